"""Add items to an issue file from article links, leaving the rest of the file as it was.

Each page becomes an item (clean link, TODO placeholders where the page had nothing),
placed with the issue's other items of its section. :mod:`newsletter.issue_append`
writes them into the file's text in its own style and proves every other byte stays
the same; the result is checked, then written atomically.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import ValidationError

from .article import (
    CONCURRENCY,
    MAX_BYTES,
    MAX_REDIRECTS,
    TIMEOUT,
    Article,
    FetchError,
    fetch_articles,
    with_scheme,
)
from .errors import IssueFileError, NewsletterError
from .files import atomic_write
from .issue import (
    Diagnostic,
    Item,
    check_file,
    is_tracking_param,
    parse_issue_text,
    url_key,
)
from .issue_append import append_items
from .issue_yaml import MAX_BYTES as MAX_ISSUE_BYTES

TITLE_TODO = "TODO the headline (none found on the page)"
SUMMARY_TODO = "TODO two or three sentences about the story (no description found on the page)."
IMAGE_ALT_TODO = "TODO describe the picture"
# The link of the example item that `newsletter new` writes.
EXAMPLE_URL = "https://example.org/TODO"

# --- the report --------------------------------------------------------------------------


@dataclass
class AddedItem:
    """An item made from one page."""

    url: str
    article: Article
    fields: dict[str, Any]
    position: int = 0  # 1-based, as in `items[9]` of `newsletter check`
    placeholders: list[str] = field(default_factory=list)  # fields holding a TODO
    notes: list[str] = field(default_factory=list)  # "field: what happened", for people


@dataclass(frozen=True)
class SkippedUrl:
    url: str
    reason: str


@dataclass(frozen=True)
class FailedUrl:
    url: str
    reason: str


@dataclass
class AddReport:
    """What :func:`add_items` did (or, with dry_run, would do)."""

    path: Path
    added: list[AddedItem] = field(default_factory=list)
    skipped: list[SkippedUrl] = field(default_factory=list)
    failed: list[FailedUrl] = field(default_factory=list)
    yaml: str = ""  # the text of the new items, as inserted
    written: bool = False
    notes: list[str] = field(default_factory=list)  # about the issue as a whole
    section_note: str = ""  # which section the new items went into, and where
    diagnostics: list[Diagnostic] = field(default_factory=list)  # check of the new items

    @property
    def ok(self) -> bool:
        return not self.failed


# --- URLs --------------------------------------------------------------------------------


def clean_url(url: str) -> str:
    """``url`` without tracking parameters (utm_*, fbclid, ...) and without a fragment."""
    parts = urlsplit(url.strip())
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not is_tracking_param(k)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="/:,@"), fragment=""))


# --- items from articles -----------------------------------------------------------------


def item_from_article(article: Article, section: str | None = None) -> AddedItem:
    """The issue item for ``article``, with TODO placeholders where the page had nothing."""
    fields: dict[str, Any] = {}
    placeholders: list[str] = []
    notes: list[str] = []
    if article.redirected:
        notes.append(f"url: the link redirects; used where it leads, {article.final_url}")
    fields["title"] = article.title or TITLE_TODO
    if not article.title:
        placeholders.append("title")
        notes.append("title: none found on the page; wrote a TODO")
    fields["url"] = clean_url(article.final_url)
    if article.source:
        fields["source"] = article.source
    else:
        notes.append("source: the page does not name its publication; left out")
    if article.published:
        fields["published"] = article.published
    else:
        notes.append("published: no date found on the page; left out")
    if article.image:
        fields["image"] = article.image
        fields["image_alt"] = article.image_alt or IMAGE_ALT_TODO
        if not article.image_alt:
            placeholders.append("image_alt")
            notes.append("image_alt: the page does not describe its picture; wrote a TODO")
    if section:
        fields["section"] = section
    fields["summary"] = article.summary or SUMMARY_TODO
    if article.summary:
        notes.append(f"summary: taken from {article.summary_from}; read it through")
    else:
        placeholders.append("summary")
        notes.append("summary: no description found on the page; wrote a TODO")
    notes.extend(article.notes)
    return AddedItem(article.url, article, fields, placeholders=placeholders, notes=notes)


# --- the whole job -----------------------------------------------------------------------


def _read(path: Path) -> tuple[str, dict[str, int], list[str | None]]:
    """The file's text (newlines as they are), its item links by url_key, each item's
    section (None for none)."""
    try:
        if path.stat().st_size > MAX_ISSUE_BYTES:
            raise NewsletterError(
                f"{path} is over {MAX_ISSUE_BYTES // 1_000_000} MB; an issue file is much "
                "smaller", hint=f"Run `newsletter check {path}`.")
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise NewsletterError(f"{path}: no such file",
                              hint="Start an issue with `newsletter new`.") from None
    except UnicodeDecodeError:
        raise NewsletterError(f"{path}: not a UTF-8 text file",
                              hint=f"Run `newsletter check {path}` to see where.") from None
    _, problems, data = parse_issue_text(text.removeprefix("\ufeff"), path)
    if data is None:
        raise IssueFileError(
            f"{path} cannot be read as an issue:\n  " + "\n  ".join(map(str, problems)),
            diagnostics=problems,
            hint=f"Fix it, then run `newsletter check {path}`.",
        )
    links: dict[str, int] = {}
    sections: list[str | None] = []
    items = data.get("items") if isinstance(data, dict) else None
    items = items if isinstance(items, list) else []
    for index, item in enumerate(items):
        url = item.get("url") if isinstance(item, dict) else None
        if isinstance(url, str):
            links.setdefault(url_key(url), index + 1)
        section = item.get("section") if isinstance(item, dict) else None
        sections.append(str(section).strip() or None if section is not None else None)
    return text, links, sections


def placement(section: str | None, sections: list[str | None]) -> tuple[str | None,
                                                                          int | None, str]:
    """Where new items of ``section`` go among items whose sections are ``sections``.

    Returns (the section as the issue spells it, how many existing items stay
    before the new ones (None: all), a note saying what was done). A named
    section's items go after the issue's last item in it, so they share its
    heading. Items without a section go before the first heading (after the
    items that have none), so they never appear under another item's heading.
    """
    if section is None or not section.strip():
        leading = next((i for i, s in enumerate(sections) if s is not None), len(sections))
        where = ("at the start, before the first section heading" if leading == 0 and sections
                 else "with the issue's other items that have none")
        return None, (None if leading == len(sections) else leading), (
            f"section: none given (use --section to choose one), so no section heading; "
            f"the new items go {where}")
    wanted = section.strip()
    same = [i for i, s in enumerate(sections) if s is not None and s.casefold()
            == wanted.casefold()]
    if not same:
        return wanted, None, (f"section: {wanted!r} is not in the issue yet; the new items "
                              "start it at the end")
    spelled = sections[same[-1]] or wanted
    after = same[-1] + 1
    note = f"section: {spelled!r}; the new items go after the issue's other items in it"
    if spelled != wanted:
        note += f" (spelled as the issue spells it, not {wanted!r})"
    return spelled, (None if after == len(sections) else after), note


def add_items(
    path: Path,
    urls: Iterable[str],
    *,
    dry_run: bool = False,
    section: str | None = None,
    timeout: float = TIMEOUT,
    max_bytes: int = MAX_BYTES,
    max_redirects: int = MAX_REDIRECTS,
    concurrency: int = CONCURRENCY,
    on_fetched: Callable[[str, Article | FetchError], None] | None = None,
) -> AddReport:
    """Fetch ``urls`` and append an item for each to the issue file at ``path``.

    Links already in the issue are skipped; pages that fail are reported and
    leave the file alone. With ``dry_run`` nothing is written.
    """
    path = Path(path)
    report = AddReport(path)
    _, links, _sections = _read(path)
    wanted: dict[str, str] = {}  # url_key -> url
    for url in map(with_scheme, urls):
        key = url_key(url)
        if key in links:
            report.skipped.append(SkippedUrl(url, f"already in the issue as items[{links[key]}]"))
        elif key in wanted:
            report.skipped.append(SkippedUrl(url, "given twice; added once"))
        else:
            wanted[key] = url
    fetched = fetch_articles(
        wanted.values(), timeout=timeout, max_bytes=max_bytes, max_redirects=max_redirects,
        concurrency=concurrency, on_done=on_fetched,
    )
    # Read again: someone may have saved the file while the pages were loading.
    text, taken, sections = _read(path)
    section, after, section_note = placement(section, sections)
    base = len(sections) if after is None else after
    for url in wanted.values():
        result = fetched[url]
        if isinstance(result, FetchError):
            report.failed.append(FailedUrl(url, result.message))
            continue
        key = url_key(result.final_url)
        if key in taken:
            where = f"already in the issue as items[{taken[key]}]"
            if result.redirected:
                where = f"leads to {result.final_url}, {where}"
            report.skipped.append(SkippedUrl(url, where))
            continue
        added = item_from_article(result, section)
        try:
            Item.model_validate(added.fields)
        except ValidationError as exc:
            problem = exc.errors()[0]
            report.failed.append(FailedUrl(url, f"{'.'.join(map(str, problem['loc']))}: "
                                                f"{problem['msg']}"))
            continue
        added.position = base + len(report.added) + 1
        taken[key] = added.position
        report.added.append(added)
    if not report.added:
        return report
    report.section_note = section_note
    if url_key(EXAMPLE_URL) in taken:
        report.notes.append(f"items[{taken[url_key(EXAMPLE_URL)]}] is still the example from "
                            "`newsletter new`; delete it once the real stories are in")
    new_text, report.yaml = append_items(text, [a.fields for a in report.added], after)
    new_items = range(report.added[0].position, report.added[-1].position + 1)
    _, problems, _ = parse_issue_text(new_text.removeprefix("\ufeff"), path)
    if broken := [d for d in problems if _item_number(d) in new_items]:
        raise NewsletterError(  # a bug, not the user's: say what and change nothing
            "the new items would not be valid, so nothing was written:\n  "
            + "\n  ".join(map(str, broken)),
            hint="Run with --dry-run and paste the printed items into the file by hand.",
        )
    if dry_run:
        return report
    atomic_write(path, new_text)
    report.written = True
    report.diagnostics = [d for d in check_file(path).diagnostics
                          if _item_number(d) in new_items]
    return report


def _item_number(diagnostic: Diagnostic) -> int:
    """9 for a diagnostic about items[9] or its fields; 0 for the rest of the file."""
    match = re.match(r"items\[(\d+)\]", diagnostic.field)
    return int(match.group(1)) if match else 0

