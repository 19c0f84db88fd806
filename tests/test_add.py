"""`newsletter add`: fetching article pages from a real local server and adding items.

The pages are in tests/pages/; the server below adds redirects, errors, a slow
page, a huge page and a non-HTML file. Nothing here touches the internet.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from newsletter.article import FetchError, fetch_article, parse_article, shorten, with_scheme
from newsletter.errors import NewsletterError
from newsletter.issue import check_file, load_issue, url_key
from newsletter.issue_append import append_items
from newsletter.issue_editor import (
    IMAGE_ALT_TODO,
    SUMMARY_TODO,
    TITLE_TODO,
    add_items,
    clean_url,
)
from tests.plugins.waiting import wait_until

PAGES = Path(__file__).parent / "pages"
ISSUE = Path("issues/2021-02-01.yaml")
HUGE_BYTES = 32 * 1024 * 1024
SLOW_SECONDS = 3.0


# Guessing would read these bytes as Windows-1252: only the declared charset gets it right.
GREEK_PAGE = '<html><head>{meta}<meta property="og:title" content="Καλημέρα κόσμε">' \
    "</head></html>"


@dataclass
class Site:
    """The running server: its base URL and what it saw."""

    base: str
    hits: list[str] = field(default_factory=list)
    huge_sent: list[int] = field(default_factory=list)
    barrier: threading.Barrier = field(default_factory=lambda: threading.Barrier(3))

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


def _cp1252_without_meta() -> bytes:
    lines = (PAGES / "windows-1252.html").read_bytes().splitlines(keepends=True)
    return b"".join(line for line in lines if b"http-equiv" not in line)


class _Handler(BaseHTTPRequestHandler):
    site: Site

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _send(self, status: int, body: bytes, content_type: str | None = "text/html",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, status: int, location: str) -> None:
        self._send(status, b"", headers={"Location": location})

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?")[0]
        self.site.hits.append(self.path)
        if path.startswith("/pages/"):
            file = PAGES / path.removeprefix("/pages/")
            if file.is_file():
                return self._send(200, file.read_bytes())
        elif path == "/utf8":
            return self._send(200, (PAGES / "opengraph.html").read_bytes(),
                              "text/html; charset=utf-8")
        elif path == "/cp1252-header":
            return self._send(200, _cp1252_without_meta(), "text/html; charset=windows-1252")
        elif path == "/cp1252-guess":
            return self._send(200, _cp1252_without_meta(), "text/html")
        elif path == "/greek-header":
            return self._send(200, GREEK_PAGE.format(meta="").encode("iso-8859-7"),
                              "text/html; charset=iso-8859-7")
        elif path == "/greek-meta":
            meta = '<meta charset="iso-8859-7">'
            return self._send(200, GREEK_PAGE.format(meta=meta).encode("iso-8859-7"))
        elif path == "/r/1":
            return self._redirect(302, "/r/2")
        elif path == "/r/2":
            return self._redirect(301, f"{self.site.base}/r/3")
        elif path == "/r/3":
            return self._redirect(307, "/pages/jsonld.html")
        elif path == "/loop":
            return self._redirect(302, "/loop")
        elif path == "/slow":
            time.sleep(SLOW_SECONDS)
            return self._send(200, (PAGES / "opengraph.html").read_bytes())
        elif path == "/huge":
            return self._huge()
        elif path == "/report.pdf":
            return self._send(200, b"%PDF-1.4\n", "application/pdf")
        elif path == "/untyped":
            return self._send(200, b"%PDF-1.4\n", None)
        elif path.startswith("/together/"):
            # Answers only when three requests are waiting at once: proves concurrency.
            self.site.barrier.wait(timeout=10)
            number = path.rsplit("/", 1)[1]
            page = f'<meta property="og:title" content="Story {number}">' \
                   f'<meta name="description" content="Summary {number}.">'
            return self._send(200, page.encode())
        self._send(404, b"<h1>Not found</h1>")

    def _huge(self) -> None:
        head = (b'<html><head><meta property="og:title" content="A very long page">'
                b'<meta property="og:description" content="It goes on and on.">'
                b"</head><body>")
        chunk = b"<p>" + b"All work and no play. " * 2900 + b"</p>\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(HUGE_BYTES))
        self.end_headers()
        sent = 0
        try:
            self.wfile.write(head)
            sent = len(head)
            while sent < HUGE_BYTES:
                part = chunk[: HUGE_BYTES - sent]
                self.wfile.write(part)
                sent += len(part)
        except OSError:
            pass
        self.site.huge_sent.append(sent)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that give up (timeouts, size limits) are part of the tests


@pytest.fixture(scope="module")
def server() -> Iterator[Site]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    site = Site(f"http://127.0.0.1:{httpd.server_address[1]}")
    _Handler.site = site
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield site
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def site(server: Site) -> Site:
    server.hits.clear()
    server.huge_sent.clear()
    server.barrier.reset()
    return server


# --- reading pages -----------------------------------------------------------------------


def test_opengraph_page_gives_every_field(site: Site) -> None:
    article = fetch_article(site.url("/pages/opengraph.html"))
    assert article.title == "Solar Companies Rely on Materials From Xinjiang"
    assert article.source == "The Daily Example"
    assert article.published == dt.date(2021, 1, 14)
    assert article.image == "https://images.example.org/solar-panels.jpg"
    assert article.image_alt == "Rows of solar panels in a desert"
    assert article.summary.startswith("Solar power has built a reputation")
    assert "Xinjiang — a region synonymous with forced labour & repression —" in article.summary
    assert article.summary_from == "the page's description"
    assert not article.truncated and not article.redirected


def test_json_ld_only_page(site: Site) -> None:
    article = fetch_article(site.url("/pages/jsonld.html"))
    assert article.title == "Huawei patent mentions use of Uighur-spotting tech"
    assert article.source == "Example News"
    assert article.published == dt.date(2021, 1, 13)
    assert article.summary.startswith("A Huawei patent has been brought to light")
    assert article.image is None


def test_twitter_card_page_without_opengraph(sample_project: Path, site: Site) -> None:
    url = site.url("/pages/twitter-card.html")
    article = fetch_article(url)
    assert article.title == "Cotton from Xinjiang still reaches high-street shelves"
    assert article.summary == (
        "Tests on shirts from five chains found cotton grown in Xinjiang, despite pledges "
        "to keep it out of their supply chains."
    )
    assert article.summary_from == "the page's description"
    report = add_items(ISSUE, [url], dry_run=True)
    fields = report.added[0].fields
    assert fields["title"] == article.title and fields["summary"] == article.summary


def test_page_without_metadata_uses_title_and_first_paragraph(site: Site) -> None:
    article = fetch_article(site.url("/pages/plain.html"))
    assert article.title == "Beijing accelerates campaign of ethnic assimilation"
    # Not the header, the byline or the caption; the ’ shows UTF-8 was guessed right.
    assert article.summary == (
        "To realize the China of his dreams, Xi Jinping wants to meld the nation’s dozens "
        "of ethnic groups into a singular national identity."
    )
    assert article.summary_from == "the first paragraph of the article"
    assert article.source is None and article.published is None


@pytest.mark.parametrize("path", ["/pages/windows-1252.html", "/cp1252-header", "/cp1252-guess"])
def test_windows_1252_page(site: Site, path: str) -> None:
    article = fetch_article(site.url(path))
    assert article.title == "Le “café” de Montréal"
    assert article.summary == "Naïve résumé – the café “reopens” for good."


@pytest.mark.parametrize("path", ["/greek-header", "/greek-meta"])
def test_declared_charset_is_honoured(site: Site, path: str) -> None:
    assert fetch_article(site.url(path)).title == "Καλημέρα κόσμε"


def test_redirect_chain_is_followed(site: Site) -> None:
    article = fetch_article(site.url("/r/1"))
    assert article.final_url == site.url("/pages/jsonld.html")
    assert article.url == site.url("/r/1") and article.redirected
    assert article.title == "Huawei patent mentions use of Uighur-spotting tech"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/missing", "404 Not Found"),
        ("/loop", "too many redirects"),
        ("/report.pdf", "not a web page (the server sent application/pdf)"),
        ("/untyped", "not a web page"),
        ("/pages/paywall.html", "found no title or description"),
    ],
)
def test_pages_that_fail_say_why(site: Site, path: str, message: str) -> None:
    with pytest.raises(FetchError) as caught:
        fetch_article(site.url(path))
    assert message in caught.value.message
    assert caught.value.url == site.url(path)


def test_redirects_are_capped(site: Site) -> None:
    with pytest.raises(FetchError, match="too many redirects"):
        fetch_article(site.url("/r/1"), max_redirects=2)


def test_slow_page_times_out(site: Site) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match="did not answer within 0.5 seconds"):
        fetch_article(site.url("/slow"), timeout=0.5)
    assert time.monotonic() - started < SLOW_SECONDS


def test_huge_page_is_read_only_up_to_the_limit(site: Site) -> None:
    article = fetch_article(site.url("/huge"), max_bytes=200_000)
    assert article.title == "A very long page"
    assert article.truncated and article.bytes_read == 200_000
    assert "over 195 KB" in article.notes[0]
    # The server notices the closed connection a moment later.
    wait_until(lambda: site.huge_sent, 5, "the server never noticed the closed connection")
    assert site.huge_sent[0] < HUGE_BYTES // 2


def test_address_without_https_is_completed(site: Site) -> None:
    assert with_scheme(" www.bbc.com/news/1 ") == "https://www.bbc.com/news/1"
    assert with_scheme(site.url("/x")) == site.url("/x")
    assert with_scheme("notes") == "notes"


def test_subscriber_only_articles_are_noted() -> None:
    page = b"""<title>Scoop</title><script type="application/ld+json">
    {"@type": "NewsArticle", "headline": "Scoop", "isAccessibleForFree": false,
     "description": "The first lines only."}</script>"""
    article = parse_article(page, "https://paper.example/scoop")
    assert article.summary == "The first lines only."
    assert "for subscribers" in article.notes[0]


def test_closed_port_says_the_connection_was_refused() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FetchError, match="the site refused the connection"):
        fetch_article(f"http://127.0.0.1:{port}/story")


def test_non_web_address_is_refused() -> None:
    with pytest.raises(FetchError, match="not a web address"):
        fetch_article("ftp://example.org/file")


def test_picture_rules(site: Site) -> None:
    no_alt = fetch_article(site.url("/pages/image-no-alt.html"))
    assert no_alt.image == "https://cdn.example.org/media/photo.jpg"
    assert no_alt.image_alt is None
    on_http = fetch_article(site.url("/pages/image-http.html"))
    assert on_http.image is None and on_http.image_alt is None
    assert "not on an https address" in on_http.notes[0]


def test_title_loses_the_site_name_and_summary_is_trimmed() -> None:
    long = "First sentence is here. " + "More words follow without end " * 30
    page = (f'<title>Headline | Paper</title><meta property="og:site_name" content="Paper">'
            f'<meta name="description" content="{long}">').encode()
    article = parse_article(page, "https://paper.example/a")
    assert article.title == "Headline"
    assert len(article.summary) <= 500 and article.summary.endswith("…")


def test_shorten_prefers_a_sentence_end() -> None:
    text = "One sentence here. " * 10 + "x" * 50
    assert shorten(text, 100) == ("One sentence here. " * 5).strip()
    assert shorten("short", 100) == "short"
    assert shorten("word " * 40, 30) == "word word word word word word…"


def test_urls_are_compared_without_noise() -> None:
    assert url_key("https://www.BBC.com/news/1/?utm_source=x&b=2&a=1#top") == url_key(
        "http://bbc.com/news/1?a=1&b=2"
    )
    assert url_key("https://bbc.com/news/1") != url_key("https://bbc.com/news/2")
    assert url_key("https://bbc.com/news?id=1") != url_key("https://bbc.com/news?id=2")
    assert clean_url("https://x.org/a?id=3&utm_medium=social&fbclid=Z#c") == "https://x.org/a?id=3"


# --- adding to the issue file ------------------------------------------------------------


def test_add_appends_items_and_keeps_the_file_byte_for_byte(
    sample_project: Path, site: Site
) -> None:
    before = ISSUE.read_bytes()
    report = add_items(
        ISSUE, [site.url("/pages/opengraph.html"), site.url("/pages/plain.html")]
    )
    after = ISSUE.read_bytes()
    assert report.written and report.ok
    assert after.startswith(before)
    added = after[len(before):].decode()
    assert added == report.yaml
    assert added == f"""
  - title: Solar Companies Rely on Materials From Xinjiang
    url: {site.url('/pages/opengraph.html')}
    source: The Daily Example
    published: 2021-01-14
    image: https://images.example.org/solar-panels.jpg
    image_alt: Rows of solar panels in a desert
    summary: |
      Solar power has built a reputation as a virtuous industry. But it relies heavily on
      Xinjiang — a region synonymous with forced labour & repression — for key components.

  - title: Beijing accelerates campaign of ethnic assimilation
    url: {site.url('/pages/plain.html')}
    summary: |
      To realize the China of his dreams, Xi Jinping wants to meld the nation’s dozens of
      ethnic groups into a singular national identity.
"""
    issue = load_issue(ISSUE)
    assert [item.title for item in issue.items[-2:]] == [
        "Solar Companies Rely on Materials From Xinjiang",
        "Beijing accelerates campaign of ethnic assimilation",
    ]
    assert [a.position for a in report.added] == [9, 10]
    assert not check_file(ISSUE).errors
    notes = report.added[1].notes
    assert "source: the page does not name its publication; left out" in notes
    assert "published: no date found on the page; left out" in notes
    assert not list(ISSUE.parent.glob(".*.tmp"))


def test_items_go_after_the_last_item_even_with_fields_after_the_list(
    tmp_path: Path, site: Site
) -> None:
    issue = tmp_path / "issue.yaml"
    text = (
        "date: 2021-02-08   # a Monday\r\n"
        "subject: 'Weekly: two'\r\n"
        "items:\r\n"
        "- title: First\r\n"
        "  url: https://example.org/one\r\n"
        "  summary: >\r\n"
        "    Folded text.\r\n"
        "\r\n"
        "# Comments about the draft flag stay with it.\r\n"
        "draft: true\r\n"
    )
    issue.write_bytes(text.encode())
    report = add_items(issue, [site.url("/pages/jsonld.html")], section="Tech")
    new = issue.read_bytes().decode()
    cut = text.index("\r\n# Comments")
    assert new == text[:cut] + report.yaml + text[cut:]
    assert report.yaml == (
        "\r\n"
        "- title: Huawei patent mentions use of Uighur-spotting tech\r\n"
        f"  url: {site.url('/pages/jsonld.html')}\r\n"
        "  source: Example News\r\n"
        "  published: 2021-01-13\r\n"
        "  section: Tech\r\n"
        "  summary: |\r\n"
        "    A Huawei patent has been brought to light for a system that identifies people who"
        " appear\r\n"
        "    to be of Uighur origin among images of pedestrians.\r\n"
    )
    assert load_issue(issue).items[1].section == "Tech"


def test_placeholders_are_written_reported_and_flagged_by_check(
    sample_project: Path, site: Site
) -> None:
    report = add_items(
        ISSUE, [site.url("/pages/title-only.html"), site.url("/pages/image-no-alt.html")]
    )
    title_only, no_alt = report.added
    assert title_only.fields["summary"] == SUMMARY_TODO and title_only.placeholders == [
        "summary"
    ]
    assert no_alt.fields["image_alt"] == IMAGE_ALT_TODO and no_alt.placeholders == ["image_alt"]
    assert "image_alt: the page does not describe its picture; wrote a TODO" in no_alt.notes
    warned = {(d.field, d.severity) for d in check_file(ISSUE).diagnostics if "TODO" in d.message}
    assert warned == {("items[9].summary", "warning"), ("items[10].image_alt", "warning")}
    assert {d.field for d in report.diagnostics} >= {"items[9].summary", "items[10].image_alt"}


def test_missing_title_gets_a_placeholder() -> None:
    article = parse_article(b"<body><p>" + b"A paragraph long enough to be a summary. " * 3
                            + b"</p></body>", "https://example.org/x")
    from newsletter.issue_editor import item_from_article

    item = item_from_article(article)
    assert item.fields["title"] == TITLE_TODO and "title" in item.placeholders


def test_a_new_issue_gets_items_after_its_example(sample_project: Path, site: Site) -> None:
    from newsletter.pipeline import new_issue
    from newsletter.project import Project

    path = new_issue(Project(sample_project), dt.date(2021, 2, 8))
    before = path.read_text()
    report = add_items(path, [site.url("/pages/jsonld.html")])
    assert path.read_text() == before + report.yaml
    assert report.yaml.startswith("\n  - title: Huawei patent")
    assert report.notes == ["items[1] is still the example from `newsletter new`; delete it "
                            "once the real stories are in"]
    assert not check_file(path).errors


def test_links_already_in_the_issue_are_skipped_without_fetching(
    sample_project: Path, site: Site
) -> None:
    first = add_items(ISSUE, [site.url("/pages/opengraph.html")])
    assert len(first.added) == 1
    site.hits.clear()
    before = ISSUE.read_bytes()
    again = add_items(ISSUE, [
        site.url("/pages/opengraph.html/?utm_source=newsletter#comments"),
        site.url("/pages/jsonld.html"),
        site.url("/pages/jsonld.html#again"),
        site.url("/r/1"),  # leads to jsonld.html, which this run adds
    ])
    assert [s.reason for s in again.skipped] == [
        "already in the issue as items[9]",
        "given twice; added once",
        f"leads to {site.url('/pages/jsonld.html')}, already in the issue as items[10]",
    ]
    assert [a.position for a in again.added] == [10]
    assert "/pages/opengraph.html/?utm_source=newsletter" not in site.hits
    after = ISSUE.read_bytes()
    assert after.startswith(before) and after.count(b"url: ") == before.count(b"url: ") + 1


def test_an_edit_saved_while_pages_load_is_kept(sample_project: Path, site: Site) -> None:
    url = site.url("/pages/jsonld.html")
    edit = f"\n  - title: Written by hand\n    url: {url}\n    summary: Mine.\n"

    def save_meanwhile(_url: str, _result: object) -> None:
        with ISSUE.open("a", encoding="utf-8") as out:
            out.write(edit)

    before = ISSUE.read_text()
    report = add_items(ISSUE, [url, site.url("/pages/opengraph.html")],
                       concurrency=1, on_fetched=save_meanwhile)
    assert [s.reason for s in report.skipped] == ["already in the issue as items[9]"]
    assert ISSUE.read_text().startswith(before + edit + edit)
    assert [a.position for a in report.added] == [11]


def test_failing_pages_leave_the_file_alone_and_the_others_go_in(
    sample_project: Path, site: Site
) -> None:
    before = ISSUE.read_bytes()
    stamp = ISSUE.stat().st_mtime_ns
    failing = [site.url(p) for p in ("/missing", "/report.pdf", "/pages/paywall.html", "/slow")]
    report = add_items(ISSUE, failing, timeout=0.5)
    assert not report.written and not report.ok and not report.added
    assert [f.url for f in report.failed] == failing
    assert ISSUE.read_bytes() == before and ISSUE.stat().st_mtime_ns == stamp

    mixed = add_items(ISSUE, [site.url("/missing"), site.url("/pages/jsonld.html")])
    assert [f.url for f in mixed.failed] == [site.url("/missing")]
    assert [a.url for a in mixed.added] == [site.url("/pages/jsonld.html")]
    assert ISSUE.read_bytes().startswith(before) and mixed.written


def test_pages_are_fetched_concurrently(sample_project: Path, site: Site) -> None:
    # Each page answers only once all three requests are waiting together.
    report = add_items(ISSUE, [site.url(f"/together/{n}") for n in (1, 2, 3)], timeout=15)
    assert [a.fields["title"] for a in report.added] == ["Story 1", "Story 2", "Story 3"]


def test_dry_run_writes_nothing(sample_project: Path, site: Site) -> None:
    before = ISSUE.read_bytes()
    report = add_items(ISSUE, [site.url("/pages/opengraph.html")], dry_run=True)
    assert not report.written and "title: Solar Companies Rely" in report.yaml
    assert ISSUE.read_bytes() == before


def test_an_unreadable_issue_file_is_refused(tmp_path: Path, site: Site) -> None:
    issue = tmp_path / "broken.yaml"
    issue.write_text("date: 2021-02-08\nitems: [\n")
    with pytest.raises(NewsletterError, match="cannot be read as an issue"):
        add_items(issue, [site.url("/pages/jsonld.html")])
    assert site.hits == []


def test_append_to_a_file_without_items_or_with_an_empty_list() -> None:
    item = {"title": "T", "url": "https://example.org/t", "summary": "S."}
    text, added = append_items("date: 2021-02-08\nsubject: S\n", [item])
    assert text == "date: 2021-02-08\nsubject: S\n\nitems:\n  - title: T\n" \
                   "    url: https://example.org/t\n    summary: |\n      S.\n"
    text, _ = append_items("date: 2021-02-08\nitems:\nsubject: S\n", [item])
    assert text.startswith("date: 2021-02-08\nitems:\n  - title: T\n")
    assert text.endswith("      S.\nsubject: S\n")
    with pytest.raises(NewsletterError, match="cannot add to"):
        append_items("date: 2021-02-08\nitems: []\n", [item])


def test_comments_stay_with_the_item_they_are_indented_under() -> None:
    text = (
        "items:\n"
        "  - title: One\n"
        "    url: https://example.org/one\n"
        "    summary: |\n"
        "      # Not a comment: part of the text.\n"
        "    # About item one: photo to come.\n"
        "\n"
        "  # About the next stories.\n"
        "# About the end of the file.\n"
    )
    item = {"title": "T", "url": "https://example.org/t", "summary": "S."}
    new, added = append_items(text, [item])
    cut = text.index("\n  # About the next")
    assert new == text[:cut] + added + text[cut:]


def test_markdown_markers_never_start_a_wrapped_line() -> None:
    item = {"title": "T", "url": "https://example.org/t",
            "summary": "word " * 15 + "- not a list, and 1. not numbered, # nor a heading"}
    _, added = append_items("items:\n", [item])
    lines = [ln.strip() for ln in added.splitlines()[4:]]
    assert all(not ln.startswith(("-", "#", "1.")) for ln in lines), lines


# --- the command -------------------------------------------------------------------------


def _run(*args: str) -> Result:
    from newsletter.cli import main  # here, so the library tests run whatever the CLI's state

    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_command_adds_reports_and_exits_1_when_a_page_fails(
    sample_project: Path, site: Site
) -> None:
    result = _run("add", str(ISSUE), site.url("/pages/title-only.html"), site.url("/missing"))
    assert result.exit_code == 1
    assert "✓ Added items[9]: Live: the week in pictures" in result.output
    assert "! summary: no description found on the page; wrote a TODO" in result.output
    assert f"✗ Failed {site.url('/missing')}: the site answered 404 Not Found" in result.output
    assert "Added 1 item(s) to issues/2021-02-01.yaml; 0 skipped, 1 failed." in result.output
    assert "items[9].summary: warning: contains the placeholder 'TODO'" in result.output
    assert "Next: replace the TODOs" in result.output


def test_command_dry_run_prints_yaml_and_exits_0(
    sample_project: Path, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Should the skip ever break, the https link goes to a dead proxy, not the internet.
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    before = ISSUE.read_bytes()
    result = _run("add", "--dry-run", str(ISSUE), site.url("/pages/jsonld.html"),
                  "https://www.bbc.com/news/technology-55634388?utm_source=twitter")
    assert result.exit_code == 0, result.output
    assert "  - title: Huawei patent mentions use of Uighur-spotting tech\n" in result.output
    assert "    published: 2021-01-13\n" in result.output
    assert "– Skipped https://www.bbc.com/news/technology-55634388?utm_source=twitter: " \
           "already in the issue as items[7]" in result.output
    assert "Nothing was written." in result.output
    assert ISSUE.read_bytes() == before


# --- sections (issue 12) -----------------------------------------------------------------

SECTIONED = """\
date: 2021-02-08
subject: Sections
items:
  - title: First press story
    url: https://news.example.net/press-1
    section: In the press
    summary: One.

  - title: Second press story
    url: https://news.example.net/press-2
    section: In the press
    summary: Two.

  - title: Our statement
    url: https://news.example.net/ours
    section: From us
    summary: Three.
"""


def _sections(path: Path) -> list[tuple[str, str | None]]:
    return [(item.title, item.section) for item in load_issue(path).model.items]


def test_add_with_a_section_joins_the_items_already_in_it(tmp_path: Path, site: Site) -> None:
    path = tmp_path / "2021-02-08.yaml"
    path.write_text(SECTIONED, encoding="utf-8")
    report = add_items(path, [site.url("/pages/opengraph.html")], section="in the press")
    titles = _sections(path)
    assert [section for _, section in titles] == ["In the press"] * 3 + ["From us"]
    assert titles[0][0] == "First press story" and titles[3][0] == "Our statement"
    assert report.added[0].position == 3
    assert "spelled as the issue spells it" in report.section_note


def test_add_without_a_section_never_inherits_the_previous_items(tmp_path: Path,
                                                                  site: Site) -> None:
    """Added at the end, an item without a section showed under "From us"."""
    path = tmp_path / "2021-02-08.yaml"
    path.write_text(SECTIONED, encoding="utf-8")
    report = add_items(path, [site.url("/pages/opengraph.html")])
    first, *rest = _sections(path)
    assert first[1] is None  # before the first heading: under no section
    assert [section for _, section in rest] == ["In the press"] * 2 + ["From us"]
    assert report.added[0].position == 1
    assert "none given" in report.section_note and "before the first" in report.section_note
    issue = load_issue(path)
    assert [heading for heading, _ in issue.sections] == [None, "In the press", "From us"]


def test_add_cli_says_which_section(tmp_path: Path, site: Site) -> None:
    path = tmp_path / "2021-02-08.yaml"
    path.write_text(SECTIONED, encoding="utf-8")
    result = _run("add", str(path), site.url("/pages/opengraph.html"), "--section", "Analysis")
    assert result.exit_code == 0, result.output
    assert "'Analysis' is not in the issue yet" in result.output
    assert _sections(path)[-1][1] == "Analysis"
