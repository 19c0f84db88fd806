"""Fetch an article's web page and read what an issue item needs from its metadata.

The page's OpenGraph tags and JSON-LD are read with extruct; other tags and the
article text with lxml. Nothing here knows about issue files: see issue_editor.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import extruct
import httpx
import lxml.html
from lxml import etree
from w3lib.encoding import html_to_unicode

from . import __version__
from .errors import NewsletterError

TIMEOUT = 15.0
MAX_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 5
CONCURRENCY = 6
SUMMARY_MAX = 500
# A paragraph shorter than this is usually a byline, caption or "Share this" line.
PARAGRAPH_MIN = 80
USER_AGENT = (
    f"Mozilla/5.0 (compatible; newsletter/{__version__}; "
    "fetches one article to summarise it)"
)
HTML_TYPES = ("text/html", "application/xhtml+xml")


class FetchError(NewsletterError):
    """A page could not be fetched or has nothing to make an item from."""

    def __init__(self, url: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.url = url


@dataclass
class Article:
    """What was found on one page. Fields not found are None."""

    url: str
    final_url: str
    title: str | None = None
    source: str | None = None
    published: dt.date | None = None
    image: str | None = None
    image_alt: str | None = None
    summary: str | None = None
    # Where the summary came from, in words for people ("the page's description").
    summary_from: str | None = None
    notes: list[str] = field(default_factory=list)
    truncated: bool = False
    bytes_read: int = 0

    @property
    def redirected(self) -> bool:
        return self.final_url != self.url


# --- fetching ----------------------------------------------------------------------------


def make_client(timeout: float = TIMEOUT, max_redirects: int = MAX_REDIRECTS) -> httpx.Client:
    """An HTTP client set up for fetching articles (share it between threads)."""
    return httpx.Client(
        follow_redirects=True,
        max_redirects=max_redirects,
        timeout=httpx.Timeout(timeout),
        headers={
            "User-Agent": USER_AGENT,
            "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
            "Accept-Language": "en;q=1.0, *;q=0.5",
        },
    )


def fetch_article(
    url: str,
    *,
    timeout: float = TIMEOUT,
    max_bytes: int = MAX_BYTES,
    max_redirects: int = MAX_REDIRECTS,
    client: httpx.Client | None = None,
) -> Article:
    """Fetch ``url`` and read its metadata, or raise FetchError saying why not.

    ``timeout`` is the most seconds the whole page may take. At most
    ``max_bytes`` of the page are read; the metadata is at the top, so a longer
    page is cut there rather than refused.
    """
    url = with_scheme(url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FetchError(url, "not a web address; expected one starting with https://")
    own_client = client is None
    client = client or make_client(timeout, max_redirects)
    try:
        body, content_type, final_url, truncated = _download(client, url, timeout, max_bytes)
    finally:
        if own_client:
            client.close()
    article = parse_article(body, final_url, content_type, requested_url=url)
    article.truncated = truncated
    article.bytes_read = len(body)
    if truncated:
        article.notes.append(f"the page is over {_size(max_bytes)}; read only the start")
    return article


def with_scheme(url: str) -> str:
    """'www.bbc.com/news/1' -> 'https://www.bbc.com/news/1' (as a browser's address bar does)."""
    url = url.strip()
    host = url.split("/", 1)[0]
    if "://" not in url and "." in host and " " not in host and not host.startswith("."):
        return f"https://{url}"
    return url


def _size(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / 1024 / 1024:g} MB"
    return f"{count // 1024} KB"


def _download(
    client: httpx.Client, url: str, timeout: float, max_bytes: int
) -> tuple[bytes, str | None, str, bool]:
    deadline = time.monotonic() + timeout
    try:
        with client.stream("GET", url) as response:
            final_url = str(response.url)
            if response.status_code >= 400:
                raise FetchError(url, _status_message(response))
            content_type = response.headers.get("content-type")
            mime = (content_type or "").split(";")[0].strip().lower()
            if mime and mime not in HTML_TYPES:
                raise FetchError(url, f"not a web page (the server sent {mime})")
            chunks: list[bytes] = []
            size = 0
            truncated = False
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size >= max_bytes:
                    truncated = size > max_bytes or _more_to_come(response)
                    break
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("page too slow")
            body = b"".join(chunks)[:max_bytes]
    except FetchError:
        raise
    except httpx.TooManyRedirects:
        raise FetchError(url, f"too many redirects (more than {client.max_redirects}); open "
                         "it in a browser to see where it leads") from None
    except httpx.TimeoutException:
        raise FetchError(url, f"the site did not answer within {timeout:g} seconds; try "
                         "again later or raise --timeout") from None
    except httpx.InvalidURL as exc:
        raise FetchError(url, f"not a valid web address: {exc}") from None
    except httpx.HTTPError as exc:
        raise FetchError(url, f"could not connect: {_reason(exc)}") from None
    if not mime and not body.lstrip()[:1] == b"<":
        raise FetchError(url, "not a web page (the server did not say what it sent)")
    return body, content_type, final_url, truncated


def _more_to_come(response: httpx.Response) -> bool:
    length = response.headers.get("content-length")
    return length is None or not length.isdigit() or int(length) > response.num_bytes_downloaded


def _status_message(response: httpx.Response) -> str:
    code = response.status_code
    text = f"the site answered {code} {response.reason_phrase}".rstrip()
    if code == 404:
        return f"{text}: no page at this address; check the link"
    if code in (401, 402, 403):
        return f"{text}: the page needs a login or subscription; write this item by hand"
    if code == 429:
        return f"{text}: too many requests; try again in a few minutes"
    return text


def _reason(exc: httpx.HTTPError) -> str:
    """The cause of a connection failure in words, with the technical detail last."""
    text = (str(exc) or type(exc).__name__).splitlines()[0]
    lowered = text.lower()
    if "name or service not known" in lowered or "nodename nor servname" in lowered \
            or "name resolution" in lowered or "getaddrinfo" in lowered:
        return f"no such site; check the address and your internet connection ({text})"
    if "refused" in lowered:
        return f"the site refused the connection; is the address right? ({text})"
    if "ssl" in lowered or "certificate" in lowered:
        return f"the secure (https) connection failed ({text})"
    return text


def fetch_articles(
    urls: Iterable[str],
    *,
    timeout: float = TIMEOUT,
    max_bytes: int = MAX_BYTES,
    max_redirects: int = MAX_REDIRECTS,
    concurrency: int = CONCURRENCY,
    on_done: Callable[[str, Article | FetchError], None] | None = None,
) -> dict[str, Article | FetchError]:
    """Fetch several pages at once; each URL maps to its Article or its FetchError."""
    todo = list(dict.fromkeys(urls))
    results: dict[str, Article | FetchError] = {}
    if not todo:
        return results
    with make_client(timeout, max_redirects) as client, ThreadPoolExecutor(
        max_workers=max(1, min(concurrency, len(todo)))
    ) as pool:

        def one(url: str) -> tuple[str, Article | FetchError]:
            try:
                return url, fetch_article(
                    url, timeout=timeout, max_bytes=max_bytes, client=client
                )
            except FetchError as exc:
                return url, exc

        for future in as_completed([pool.submit(one, url) for url in todo]):
            url, result = future.result()
            results[url] = result
            if on_done:
                on_done(url, result)
    return {url: results[url] for url in todo}


# --- reading the page --------------------------------------------------------------------


def decode_html(body: bytes, content_type: str | None = None) -> str:
    """The page as text: charset from the header, else a BOM or <meta>, else guessed."""
    _, text = html_to_unicode(content_type, body, auto_detect_fun=_guess_encoding)
    return text


def _guess_encoding(body: bytes) -> str:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A cut-off page may end in the middle of a character; that is still UTF-8.
        if exc.start < len(body) - 3:
            return "cp1252"
    return "utf-8"


def parse_article(
    body: bytes | str,
    url: str,
    content_type: str | None = None,
    *,
    requested_url: str | None = None,
) -> Article:
    """Read an item's fields from a page's HTML; raise FetchError when there is nothing."""
    text = body if isinstance(body, str) else decode_html(body, content_type)
    article = Article(url=requested_url or url, final_url=url)
    try:
        tree = lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError):
        raise FetchError(article.url, "the page is empty or not HTML") from None
    meta = _meta_tags(tree)
    data = extruct.extract(
        tree, base_url=url, syntaxes=["opengraph", "json-ld"], uniform=False, errors="ignore"
    )
    og = _opengraph(data.get("opengraph", []))
    ld = list(_json_ld_things(data.get("json-ld", [])))

    def first(*values: Any) -> str | None:
        for value in values:
            cleaned = _clean(value)
            if cleaned:
                return cleaned
        return None

    article.source = first(og.get("og:site_name"), *(_name(t.get("publisher")) for t in ld))
    article.title = first(
        og.get("og:title"),
        meta.get("twitter:title"),
        *(t.get("headline") for t in ld if _is_article(t)),
        tree.findtext(".//title"),
    )
    if article.title:
        article.title = _drop_site_suffix(article.title, article.source)
    article.published = _date(
        og.get("article:published_time"), *(t.get("datePublished") for t in ld)
    )
    image = first(og.get("og:image:secure_url"), og.get("og:image"), og.get("og:image:url"))
    if image:
        image = urljoin(url, image)
        if urlsplit(image).scheme == "https":
            article.image = image
            article.image_alt = first(og.get("og:image:alt"), meta.get("twitter:image:alt"))
        else:
            article.notes.append("the page's picture is not on an https address; left it out")
    sources = [
        (og.get("og:description"), "the page's description"),
        (meta.get("description"), "the page's description"),
        (meta.get("twitter:description"), "the page's description"),
        *((t.get("description"), "the page's description") for t in ld if _is_article(t)),
        (_first_paragraph(tree), "the first paragraph of the article"),
    ]
    for value, origin in sources:
        summary = _clean(value)
        if summary and summary != article.title:
            article.summary = shorten(summary, SUMMARY_MAX)
            article.summary_from = origin
            break
    if any(t.get("isAccessibleForFree") in (False, "False", "false") for t in ld):
        article.notes.append("the page says the article is for subscribers; its description "
                             "may be only a teaser")
    if not article.title and not article.summary:
        raise FetchError(
            article.url,
            "found no title or description on the page (a paywall or login page, or one "
            "that needs JavaScript?)",
            hint="Write this item by hand in the issue file.",
        )
    return article


def _meta_tags(tree: lxml.html.HtmlElement) -> dict[str, str]:
    """<meta name=...> and <meta property=...> content, first of each, names lowercased."""
    found: dict[str, str] = {}
    for element in tree.iterfind(".//meta"):
        key = (element.get("name") or element.get("property") or "").strip().lower()
        content = element.get("content")
        if key and content and key not in found:
            found[key] = content
    return found


def _opengraph(blocks: list[dict[str, Any]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for block in blocks:
        for key, value in block.get("properties", []):
            if isinstance(value, str) and value.strip():
                found.setdefault(key.lower(), value)
    return found


def _json_ld_things(blocks: list[Any]) -> Iterator[dict[str, Any]]:
    """Every JSON-LD object, including those inside lists and @graph."""
    for block in blocks:
        if isinstance(block, list):
            yield from _json_ld_things(block)
        elif isinstance(block, dict):
            yield block
            if isinstance(block.get("@graph"), list):
                yield from _json_ld_things(block["@graph"])


_ARTICLE_TYPES = re.compile(r"Article|Posting|Report|BlogPosting|Story|WebPage", re.IGNORECASE)


def _is_article(thing: dict[str, Any]) -> bool:
    kinds = thing.get("@type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    return any(isinstance(k, str) and _ARTICLE_TYPES.search(k) for k in kinds)


def _name(value: Any) -> str | None:
    """A publisher given as a name, an object with "name", or a list of either."""
    if isinstance(value, list):
        return next((n for n in map(_name, value) if n), None)
    if isinstance(value, dict):
        return value.get("name") if isinstance(value.get("name"), str) else None
    return value if isinstance(value, str) else None


_SPACE = re.compile(r"\s+")


def _clean(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    # Some sites encode entities twice ("&amp;amp;"): the parser undoes one, this the other.
    text = _SPACE.sub(" ", html.unescape(value)).strip()
    return text or None


def _drop_site_suffix(title: str, source: str | None) -> str:
    """'Headline | The Paper' -> 'Headline' when the page says it is The Paper."""
    if source:
        for sep in (" | ", " - ", " – ", " — ", " · "):
            suffix = f"{sep}{source}"
            if title.lower().endswith(suffix.lower()) and len(title) > len(suffix):
                return title[: -len(suffix)].strip()
    return title


_DATE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})")


def _date(*values: Any) -> dt.date | None:
    """The date part of the first ISO 8601 value, as the publisher wrote it."""
    for value in values:
        if isinstance(value, list) and value:
            value = value[0]
        match = _DATE.match(value) if isinstance(value, str) else None
        if match:
            try:
                return dt.date(*map(int, match.groups()))
            except ValueError:
                continue
    return None


_NOT_ARTICLE = {"nav", "header", "footer", "aside", "figure", "figcaption", "form", "noscript"}


def _first_paragraph(tree: lxml.html.HtmlElement) -> str | None:
    """The first substantial paragraph of the article body (not menus or captions)."""
    for container in ("//article", "//main", "//*[@role='main']", "//body"):
        roots = tree.xpath(container)
        if not roots:
            continue
        for paragraph in roots[0].iter("p"):
            if any(a.tag in _NOT_ARTICLE for a in paragraph.iterancestors()):
                continue
            text = _clean(paragraph.text_content())
            if text and len(text) >= PARAGRAPH_MIN:
                return text
    return None


_SENTENCE_END = re.compile(r"[.!?…][\"'”’)]?(?=\s)")


def shorten(text: str, limit: int = SUMMARY_MAX) -> str:
    """Cut ``text`` to at most ``limit`` characters, at a sentence end if one is near."""
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    ends = [m.end() for m in _SENTENCE_END.finditer(head) if m.end() <= limit]
    if ends and ends[-1] >= limit // 2:
        return head[: ends[-1]].strip()
    cut = head[:limit].rsplit(" ", 1)[0].rstrip(" ,;:-–—")
    return f"{cut}…"
