"""Links: every address in the HTML and text parts answers, without redirects, over https."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

from ..files import atomic_write
from ..issue import url_key
from .fetch import Answer, Fetcher
from .message import Subject
from .parse import document, links, text_links
from .report import CheckResult

CACHE_FILE = Path(".newsletter") / "link-cache.json"
CACHE_SECONDS = 3600
# Sites that answer 401/403 to anyone not logged in: a paywall, not a broken link.
PAYWALLED = frozenset({
    "nytimes.com", "wsj.com", "ft.com", "washingtonpost.com", "economist.com",
    "bloomberg.com", "theatlantic.com", "newyorker.com", "thetimes.co.uk", "telegraph.co.uk",
    "scmp.com", "reuters.com", "spiegel.de", "faz.net", "zeit.de", "sueddeutsche.de",
    "lemonde.fr", "nzz.ch", "haaretz.com", "foreignpolicy.com", "foreignaffairs.com",
    "thetimes.com", "latimes.com", "bostonglobe.com", "wired.com", "hbr.org", "nikkei.com",
    "asia.nikkei.com", "theaustralian.com.au", "globeandmail.com", "handelsblatt.com",
    "welt.de", "lefigaro.fr", "corriere.it", "politico.com", "axios.com", "theinformation.com",
})


def paywalled(url: str) -> bool:
    """True for an address on a known news site with a paywall (or its sub-domains)."""
    host = (urlsplit(url).hostname or "").lower()
    return any(host == site or host.endswith("." + site) for site in PAYWALLED)


# --- the cache -----------------------------------------------------------------------------


def _cache_path(subject: Subject) -> Path:
    return subject.project.root / CACHE_FILE


def load_cache(path: Path, now: float) -> dict[str, dict[str, object]]:
    """Addresses that answered well within the last hour."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {url: entry for url, entry in data.items()
            if isinstance(entry, dict) and now - _when(entry) < CACHE_SECONDS}


def _when(entry: dict[str, object]) -> float:
    """When a cache entry was checked (0, long ago, if the file was edited into nonsense)."""
    checked = entry.get("checked", 0)
    try:
        return float(checked) if isinstance(checked, (int, float, str)) else 0.0
    except ValueError:
        return 0.0


def save_cache(path: Path, entries: dict[str, dict[str, object]]) -> None:
    """Write the cache; its folder ignores itself in git (it is this machine's state)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ignore = path.parent / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# Preflight's state on this machine; not for git.\n*\n")
        atomic_write(path, json.dumps(entries, indent=1, sort_keys=True), durable=False)
    except OSError:
        pass  # a read-only project still gets checked, just not cached


# --- the check -----------------------------------------------------------------------------


def addresses(subject: Subject) -> list[str]:
    """Every distinct link of the HTML and text parts, the personal ones left out."""
    root = document(subject.html)
    found = [link.href for link in links(root)] + text_links(subject.text)
    return [url for url in dict.fromkeys(found) if url not in subject.personal_links]


def _label(subject: Subject, url: str) -> str:
    title = subject.item_title(url)
    return f"{title}: {url}" if title else url


def _judge(result: CheckResult, subject: Subject, answer: Answer) -> None:
    url, where = answer.url, subject.where(answer.url)
    item = _label(subject, url)
    if answer.error:
        result.add("error", item, where, f"broken: {answer.error}",
                   "Check the address in a browser; fix it or remove the link.")
        return
    status = answer.status
    if status in (401, 403) and paywalled(answer.final_url or url):
        result.add("warning", item, where,
                   f"answers {status} (a paywall): readers without a subscription may not "
                   "get in", "Fine for a paywalled story; say so in the summary if you like.")
        return
    if status >= 400:
        kind = "not found" if status in (404, 410) else "the server failed" if status >= 500 \
            else "refused"
        result.add("error", item, where, f"broken: answers {status} ({kind})",
                   "Open the address in a browser; use the story's current address.")
        return
    if answer.redirects and answer.final_url and answer.final_url.rstrip("/") != url.rstrip("/"):
        result.add("warning", item, where, f"redirects to {answer.final_url}",
                   f"Use the final address instead: {answer.final_url}")


def duplicates(result: CheckResult, subject: Subject) -> None:
    """The same story linked from two places of the issue."""
    model = subject.issue.model
    seen: dict[str, str] = {}
    for index, item in enumerate(model.items):
        key = url_key(item.url)
        if key in seen:
            result.add("warning", _label(subject, item.url), f"items[{index}].url",
                       f"the same link as {seen[key]}",
                       "Remove one of the two items, or link another story.")
        else:
            seen[key] = f"items[{index}].url"


async def check_links(subject: Subject, fetcher: Fetcher, *, use_cache: bool = True,
                      ) -> CheckResult:
    """Fetch every link (HEAD, GET when HEAD is refused) and report the broken ones."""
    result = CheckResult("links", "Links")
    urls = addresses(subject)
    for url in urls:
        if url.startswith("http://"):
            result.add("warning", _label(subject, url), subject.where(url),
                       "not https: some mail programs warn readers about it",
                       "Use the https:// address of the page, if it has one.")
    duplicates(result, subject)
    now = time.time()
    cache_path = _cache_path(subject)
    cache = load_cache(cache_path, now) if use_cache else {}
    todo = [url for url in urls if url not in cache]
    answers = await asyncio.gather(*(fetcher.fetch(url) for url in todo))
    if answers and all(a.unreachable for a in answers):
        result.findings = [f for f in result.findings if f.severity != "error"]
        result.add("warning", "", "", f"none of the {len(answers)} links could be reached: "
                   "this machine seems to have no network, so links were not checked",
                   "Run `newsletter preflight` again when online (or use --offline).")
        result.summary = "not checked: no network"
        return result
    for answer in answers:
        _judge(result, subject, answer)
        if answer.ok and not answer.redirects:
            cache[answer.url] = {"checked": now, "status": answer.status}
    if use_cache:
        save_cache(cache_path, cache)
    cached = len(urls) - len(todo)
    result.summary = f"{len(urls)} links" + (f" ({cached} checked within the hour)"
                                             if cached else "")
    return result
