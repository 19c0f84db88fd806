"""The web archive's files: pages, index, feed, sitemap, drafts, escaping, incremental builds."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import feedparser
import lxml.html
import pytest
from click.testing import CliRunner

from newsletter.archive import build_archive, item_anchors, serving, slugify
from newsletter.archive.manifest import MANIFEST, manifest_path
from newsletter.cli import main
from newsletter.errors import IssueFileError, NewsletterError
from newsletter.issue import Item, load_issue
from newsletter.project import Project, default_templates_dir

from .test_archive_helpers import HOSTILE_SUBJECT, HOSTILE_SUMMARY, HOSTILE_TITLE, write_issue

SAMPLE = "2021-02-01"


@pytest.fixture
def project(sample_project: Path) -> Project:
    write_issue(sample_project, "2021-02-08", "The second week", ["Second week story."])
    write_issue(sample_project, "2022-03-07", "A year later", ["Third issue story."])
    return Project(sample_project)


def build(project: Project, **kwargs):  # type: ignore[no-untyped-def]
    kwargs.setdefault("search", False)
    return build_archive(project, project.root / "site", **kwargs)


def doc(path: Path) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(path.read_bytes())


def test_index_lists_issues_newest_first_grouped_by_year(project: Project) -> None:
    report = build(project)
    site = project.root / "site"
    assert report.published == 3
    assert sorted(report.pages_written) == [
        f"issues/{name}/index.html" for name in (SAMPLE, "2021-02-08", "2022-03-07")
    ]
    index = doc(site / "index.html")
    assert index.get("lang") == "en"
    assert [h.text_content() for h in index.cssselect("section.year h2")] == ["2022", "2021"]
    links = [(a.get("href"), a.text_content()) for a in index.cssselect("ol.issues h3 a")]
    assert links == [
        ("issues/2022-03-07/", "A year later"),
        ("issues/2021-02-08/", "The second week"),
        (f"issues/{SAMPLE}/", "Weekly Brief: leaked police files, and the U.S. calls it genocide"),
    ]
    first = index.cssselect("ol.issues li")[0]
    assert "No.\xa03" in first.text_content() and "7 March 2022" in first.text_content()
    assert "The week of 2022-03-07." in first.text_content()
    for href, _ in links:
        assert (site / href / "index.html").is_file()


def test_issue_page_has_the_email_content_with_a_subscribe_link(project: Project) -> None:
    build(project)
    page = doc(project.root / "site" / "issues" / SAMPLE / "index.html")
    config = project.config
    assert page.cssselect("h1")[0].text_content().startswith("Weekly Brief: leaked police")
    intro = page.cssselect("main .intro")
    assert len(intro) == 1
    assert " ".join(intro[0].text_content().split()) == (
        "Good morning. This week: what a leaked police database reveals about surveillance in "
        "Ürümqi, the U.S. determination of genocide, and new measures from the U.S., U.K. and "
        "Canada against forced labour."
    )
    titles = page.cssselect("article.item .item-title")
    assert len(titles) == 8
    assert titles[2].text_content().startswith("US Solar Companies Rely")
    assert "BuzzFeed.News · 14 January 2020 · Photo: Reuters" in page.text_content()
    more = page.cssselect("p.more a")[0]
    assert more.text_content().startswith("Read More")
    assert more.get("href") == "https://theintercept.com/2021/01/29/china-uyghur-muslim-surveillance-police/"
    hrefs = [a.get("href") for a in page.cssselect("a")]
    assert f"{config.service_url}/subscribe/weekly" in hrefs
    assert not any("unsubscribe" in (href or "") for href in hrefs)
    assert config.postal_address in page.cssselect("footer")[0].text_content()
    # Landmarks and a skip link for keyboard users.
    assert page.cssselect("header") and page.cssselect("main#main") and page.cssselect("footer")
    assert page.cssselect("a.skip")[0].get("href") == "#main"
    assert page.cssselect("nav[aria-label]")
    assert all(img.get("alt") for img in page.cssselect("img"))



HOSTILE_SECTION = "<script>window.pwned = 5</script> Asia & <b>Europe</b>"
HOSTILE_ALT = 'A "quoted" <b>caption</b> & <script>window.pwned = 6</script>'


def test_issue_page_has_the_intro_sections_and_pictures_of_the_email(
    sample_project: Path,
) -> None:
    titles = ["First world story", "Second world story", "A business story"]
    pictures = [
        ("https://example.org/pictures/one.jpg", "Protesters outside a courthouse"),
        None,
        ("https://example.org/pictures/three.jpg", HOSTILE_ALT),
    ]
    write_issue(
        sample_project, "2021-03-01", "Sections and pictures", ["One.", "Two.", "Three."],
        titles=titles, intro="Hello, **readers**: <i>three</i> stories this week.",
        sections=["World", "World", HOSTILE_SECTION], images=pictures,
    )
    build(Project(sample_project))
    path = sample_project / "site" / "issues" / "2021-03-01" / "index.html"
    page = doc(path)
    main = page.cssselect("main")[0]
    intro = main.cssselect(".intro")
    assert len(intro) == 1
    assert intro[0].text_content().strip() == "Hello, readers: <i>three</i> stories this week."
    assert [strong.text for strong in intro[0].cssselect("strong")] == ["readers"]
    # The intro comes first, then each heading once, before its items (which move a level down).
    outline = [
        (element.tag, element.text_content())
        for element in main.cssselect(".intro, h2.section, article.item .item-title")
    ]
    assert outline == [
        ("div", intro[0].text_content()),
        ("h2", "World"), ("h3", titles[0]), ("h3", titles[1]),
        ("h2", HOSTILE_SECTION), ("h3", titles[2]),
    ]
    found = [
        [(img.get("src"), img.get("alt")) for img in article.cssselect("img")]
        for article in main.cssselect("article.item")
    ]
    assert found == [[picture] if picture else [] for picture in pictures]
    # Headings and alt text with markup stay text.
    raw = path.read_text(encoding="utf-8")
    assert "<script>window.pwned" not in raw and "<b>" not in raw and "<i>three" not in raw
    assert not main.cssselect("script, b, i")

    # The feed carries the same content. Read with ElementTree: feedparser's sanitizer
    # mangles quotes inside attributes.
    atom = {"a": "http://www.w3.org/2005/Atom"}
    feed = ET.parse(sample_project / "site" / "feed.xml")
    entry = next(e for e in feed.findall("a:entry", atom)
                 if e.findtext("a:id", namespaces=atom).endswith("/2021-03-01/"))
    content = lxml.html.fragment_fromstring(
        entry.findtext("a:content", namespaces=atom), create_parent="div")
    assert "Hello, readers" in content.cssselect(".intro")[0].text_content()
    assert [h.text_content() for h in content.cssselect("h2.section")] == ["World", HOSTILE_SECTION]
    assert [img.get("alt") for img in content.cssselect("img")] == [
        "Protesters outside a courthouse", HOSTILE_ALT
    ]
    assert not content.cssselect("script, b, i")

def test_each_item_has_a_stable_unique_anchor(project: Project) -> None:
    build(project)
    page = doc(project.root / "site" / "issues" / SAMPLE / "index.html")
    ids = [h.get("id") for h in page.cssselect("article.item .item-title")]
    assert ids[0] == "leaked-chinese-police-database-reveals-mass-surveillance-of"
    assert len(set(ids)) == len(ids) == 8
    links = [a.get("href") for a in page.cssselect("a.permalink")]
    assert links == [f"#{anchor}" for anchor in ids]

    def item(title: str) -> Item:
        return Item(title=title, url="https://example.org/", summary="x")

    assert item_anchors([item("Same"), item("Same"), item("Same")]) == ["same", "same-2", "same-3"]
    assert item_anchors([item("2022: Ürümqi files"), item("!!!")]) == [
        "item-2022-urumqi-files", "item-2"
    ]
    assert slugify("Шинжаң хәвәрлири") == "шинжаң-хәвәрлири"


def test_canonical_opengraph_twitter_and_neighbours(project: Project) -> None:
    build(project)
    page = doc(project.root / "site" / "issues" / "2021-02-08" / "index.html")
    canonical = "https://news.example.org/issues/2021-02-08/"
    assert page.cssselect("link[rel=canonical]")[0].get("href") == canonical

    def meta(attribute: str, name: str) -> str:
        return page.cssselect(f'meta[{attribute}="{name}"]')[0].get("content")

    assert meta("property", "og:url") == canonical
    assert meta("property", "og:title") == "The second week"
    assert meta("property", "og:description") == "The week of 2021-02-08."
    assert meta("property", "og:type") == "article"
    assert meta("name", "twitter:card") == "summary"  # no item has a picture: the logo
    assert meta("name", "twitter:title") == "The second week"
    previous = page.cssselect("a[rel=prev]")[0]
    following = page.cssselect("a[rel=next]")[0]
    assert previous.get("href") == f"../{SAMPLE}/"
    assert following.get("href") == "../2022-03-07/"
    assert "A year later" in following.text_content()
    first = doc(project.root / "site" / "issues" / SAMPLE / "index.html")
    assert not first.cssselect("a[rel=prev]") and first.cssselect("a[rel=next]")


def test_feed_parses_with_dates_links_and_full_content(project: Project) -> None:
    build(project)
    parsed = feedparser.parse((project.root / "site" / "feed.xml").read_bytes())
    assert not parsed.bozo, parsed.bozo_exception
    assert parsed.version == "atom10"
    assert parsed.feed.title == "East Turkistan Weekly Brief"
    assert parsed.feed.id == "https://news.example.org/"
    links = {link.rel: link.href for link in parsed.feed.links}
    assert links == {
        "alternate": "https://news.example.org/",
        "self": "https://news.example.org/feed.xml",
    }
    names = ["2022-03-07", "2021-02-08", SAMPLE]
    assert [entry.link for entry in parsed.entries] == [
        f"https://news.example.org/issues/{name}/" for name in names
    ]
    assert [entry.id for entry in parsed.entries] == [entry.link for entry in parsed.entries]
    berlin = dt.timezone(dt.timedelta(hours=1))  # the sample's Europe/Berlin in winter
    for entry, name in zip(parsed.entries, names, strict=True):
        published = dt.datetime.fromisoformat(entry.published)
        assert published == dt.datetime.combine(dt.date.fromisoformat(name), dt.time(), berlin)
        assert dt.datetime.fromisoformat(entry.updated) >= published
    assert dt.datetime.fromisoformat(parsed.feed.updated) == max(
        dt.datetime.fromisoformat(entry.updated) for entry in parsed.entries
    )
    sample = parsed.entries[2]
    assert sample.title.startswith("Weekly Brief: leaked police files")
    content = sample.content[0]
    assert content.type == "text/html"
    assert "Leaked Chinese Police Database Reveals Mass Surveillance of Uyghurs" in content.value
    assert "the Intercept analyzed millions of leaked files" in content.value
    assert content.value.count('class="item"') == 8


def test_feed_carries_the_latest_twenty_issues(sample_project: Path) -> None:
    start = dt.date(2023, 1, 2)
    for week in range(22):
        date = (start + dt.timedelta(weeks=week)).isoformat()
        write_issue(sample_project, date, f"Week {week}")
    build(Project(sample_project))
    parsed = feedparser.parse((sample_project / "site" / "feed.xml").read_bytes())
    assert len(parsed.entries) == 20
    assert parsed.entries[0].title == "Week 21" and parsed.entries[-1].title == "Week 2"


def test_sitemap_and_404(project: Project) -> None:
    build(project)
    site = project.root / "site"
    tree = ET.parse(site / "sitemap.xml")
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    locs = [loc.text for loc in tree.findall("s:url/s:loc", ns)]
    assert locs == ["https://news.example.org/"] + [
        f"https://news.example.org/issues/{name}/" for name in ("2022-03-07", "2021-02-08", SAMPLE)
    ]
    lastmods = [lastmod.text for lastmod in tree.findall("s:url/s:lastmod", ns)]
    assert lastmods == ["2022-03-07", "2022-03-07", "2021-02-08", SAMPLE]
    missing = doc(site / "404.html")
    assert missing.cssselect("h1")[0].text_content() == "Page not found"
    assert missing.cssselect("main a")[0].get("href") == "/"
    assert missing.cssselect("style")  # works at any depth: no relative stylesheet link



def test_an_issue_is_published_under_its_file_name_not_its_date(project: Project) -> None:
    write_issue(project.root, "2021-06-15", "A special edition", name="special-edition")
    report = build(project)
    site = project.root / "site"
    url = "https://news.example.org/issues/special-edition/"
    assert "issues/special-edition/index.html" in report.pages_written
    assert not (site / "issues" / "2021-06-15").exists()
    page = doc(site / "issues" / "special-edition" / "index.html")
    assert page.cssselect("h1")[0].text_content() == "A special edition"
    assert page.cssselect("link[rel=canonical]")[0].get("href") == url
    # Listed by its date among the others, under its own name.
    links = [(a.get("href"), a.text_content()) for a in doc(site / "index.html").cssselect(
        "ol.issues h3 a")]
    assert links[1:3] == [
        ("issues/special-edition/", "A special edition"), ("issues/2021-02-08/", "The second week")
    ]
    older = doc(site / "issues" / "2021-02-08" / "index.html")
    assert older.cssselect("a[rel=next]")[0].get("href") == "../special-edition/"

    parsed = feedparser.parse((site / "feed.xml").read_bytes())
    entry = next(e for e in parsed.entries if e.title == "A special edition")
    assert entry.link == entry.id == url
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    locs = [loc.text for loc in ET.parse(site / "sitemap.xml").findall("s:url/s:loc", ns)]
    assert url in locs
    for name in ("index.html", "feed.xml", "sitemap.xml"):
        assert "issues/2021-06-15" not in (site / name).read_text(encoding="utf-8")

def test_html_and_script_in_item_text_stay_text_everywhere(sample_project: Path) -> None:
    write_issue(sample_project, "2021-03-01", HOSTILE_SUBJECT, [HOSTILE_SUMMARY],
                titles=[HOSTILE_TITLE], preheader="<em>Preheader</em> & more")
    build(Project(sample_project))
    site = sample_project / "site"
    for path in (site / "index.html", site / "issues" / "2021-03-01" / "index.html"):
        raw = path.read_text(encoding="utf-8")
        assert "<script>window.pwned" not in raw and "<b>Jerry" not in raw
        assert "<em>Preheader" not in raw
        assert not doc(path).cssselect("script, b, i, em, img[onerror]")
        assert "&lt;script&gt;window.pwned = 4&lt;/script&gt;" in raw
        text = doc(path).text_content()
        assert '<script>window.pwned = 4</script> "Quotes" & <i>tags</i>' in text
    page = doc(site / "issues" / "2021-03-01" / "index.html")
    assert page.cssselect(".item-title")[0].text_content() == HOSTILE_TITLE
    summary = page.cssselect(".summary")[0].text_content()
    assert '<img src="x" onerror="window.pwned = 2">' in summary
    assert page.cssselect("title")[0].text_content().startswith(HOSTILE_SUBJECT)

    parsed = feedparser.parse((site / "feed.xml").read_bytes())
    entry = parsed.entries[0]
    assert entry.title == HOSTILE_SUBJECT
    # The entry's HTML shows the markup as text: escaped once inside the HTML.
    content = lxml.html.fragment_fromstring(entry.content[0].value, create_parent="div")
    assert not content.cssselect("script, b, img[onerror]")
    assert HOSTILE_TITLE in content.text_content()
    assert "<script>window.pwned = 3</script>" in content.text_content()


def test_drafts_are_never_published_and_removed_when_they_become_drafts(
    project: Project,
) -> None:
    draft = write_issue(project.root, "2022-03-14", "Not ready yet", draft=True)
    report = build(project)
    site = project.root / "site"
    assert report.drafts == 1 and report.published == 3
    assert not (site / "issues" / "2022-03-14").exists()
    for name in ("index.html", "feed.xml", "sitemap.xml"):
        assert "2022-03-14" not in (site / name).read_text(encoding="utf-8")
        assert "Not ready yet" not in (site / name).read_text(encoding="utf-8")

    # Publish it, then make it a draft again: its page and every mention go away.
    draft.write_text(draft.read_text(encoding="utf-8").replace("draft: true\n", ""), "utf-8")
    report = build(project)
    assert sorted(report.pages_written) == [
        "issues/2022-03-07/index.html", "issues/2022-03-14/index.html"
    ]
    assert "Not ready yet" in (site / "index.html").read_text(encoding="utf-8")
    write_issue(project.root, "2022-03-14", "Not ready yet", draft=True)
    report = build(project)
    assert report.pages_removed == ["issues/2022-03-14/index.html"]
    assert not (site / "issues" / "2022-03-14").exists()
    for name in ("index.html", "feed.xml", "sitemap.xml"):
        assert "Not ready yet" not in (site / name).read_text(encoding="utf-8")
    # Its neighbour lost its "next issue" link.
    assert not doc(site / "issues" / "2022-03-07" / "index.html").cssselect("a[rel=next]")


def _mtimes(site: Path) -> dict[str, int]:
    pages = site.glob("issues/*/index.html")
    return {str(p.relative_to(site)): p.stat().st_mtime_ns for p in pages}


def test_rebuild_rewrites_only_the_changed_page(project: Project) -> None:
    site = project.root / "site"
    build(project)
    before = _mtimes(site)
    index_before = (site / "index.html").stat().st_mtime_ns

    unchanged = build(project)
    assert unchanged.pages_written == [] and unchanged.pages_skipped == 3
    assert unchanged.files_written == [] and unchanged.issues_parsed <= 3
    assert _mtimes(site) == before

    path = project.root / "issues" / "2021-02-08.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "Second week story.", "Second week story, corrected."), encoding="utf-8")
    report = build(project)
    assert report.pages_written == ["issues/2021-02-08/index.html"]
    assert report.pages_skipped == 2
    after = _mtimes(site)
    assert {name for name in after if after[name] != before[name]} == {
        "issues/2021-02-08/index.html"
    }
    assert "corrected" in (site / "issues" / "2021-02-08" / "index.html").read_text("utf-8")
    assert (site / "index.html").stat().st_mtime_ns == index_before  # same list, not rewritten
    # Corrected after its date: the feed says it was updated.
    parsed = feedparser.parse((site / "feed.xml").read_bytes())
    entry = next(e for e in parsed.entries if e.link.endswith("/2021-02-08/"))
    assert dt.datetime.fromisoformat(entry.updated).date() == dt.datetime.now(dt.UTC).date()

    # A new subject shows in the neighbours' previous/next links, so they are rewritten too.
    path.write_text(path.read_text(encoding="utf-8").replace(
        "The second week", "The second week, renamed"), encoding="utf-8")
    report = build(project)
    assert sorted(report.pages_written) == sorted(
        f"issues/{name}/index.html" for name in (SAMPLE, "2021-02-08", "2022-03-07")
    )
    assert "index.html" in report.files_written


def test_changed_template_rebuilds_every_page(project: Project) -> None:
    build(project)
    override = project.templates_dir / "archive" / "_content.html.j2"
    override.parent.mkdir(parents=True, exist_ok=True)
    default = default_templates_dir() / "archive" / "_content.html.j2"
    override.write_text(default.read_text("utf-8").replace("Read More", "Read the story"), "utf-8")
    report = build(project)
    assert len(report.pages_written) == 3
    assert "Read the story" in (project.root / "site" / "issues" / SAMPLE / "index.html").read_text(
        "utf-8")


def test_deleted_output_page_is_written_again(project: Project) -> None:
    build(project)
    page = project.root / "site" / "issues" / SAMPLE / "index.html"
    page.unlink()
    assert build(project).pages_written == [f"issues/{SAMPLE}/index.html"]
    assert page.is_file()


def test_an_invalid_issue_file_stops_the_build_before_writing(project: Project) -> None:
    build(project)
    site = project.root / "site"
    manifest = manifest_path(project, site).read_bytes()
    bad = project.root / "issues" / "2022-03-14.yaml"
    bad.write_text("date: 2022-03-14\nsubject: Broken\nitems: []\n", encoding="utf-8")
    write_issue(project.root, "2022-03-21", "Would be new")
    with pytest.raises(IssueFileError) as caught:
        build(project)
    assert "2022-03-14.yaml" in caught.value.message and "items" in caught.value.message
    assert caught.value.hint and "newsletter check" in caught.value.hint
    assert not (site / "issues" / "2022-03-21").exists()
    assert manifest_path(project, site).read_bytes() == manifest
    assert not [p for p in site.rglob("*") if p.name.endswith(".tmp")]
    assert not (site / ".archive-tmp").exists()


def test_manifest_records_inputs(project: Project) -> None:
    build(project)
    manifest = json.loads(manifest_path(project, project.root / "site").read_text("utf-8"))
    assert set(manifest["files"]) == {f"{SAMPLE}.yaml", "2021-02-08.yaml", "2022-03-07.yaml"}
    assert re.fullmatch(r"[0-9a-f]{64}", manifest["site_key"])
    assert set(manifest["pages"]) == {SAMPLE, "2021-02-08", "2022-03-07"}


def test_refuses_to_build_into_the_project_folder(project: Project) -> None:
    with pytest.raises(NewsletterError, match="folder of its own"):
        build_archive(project, project.root)


def test_cli_build_and_serve_errors(project: Project) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["archive", "build", "-o", "public", "--no-search"])
    assert result.exit_code == 0, result.output
    assert "Issues published" in result.output and "3" in result.output
    assert (project.root / "public" / "issues" / SAMPLE / "index.html").is_file()
    result = runner.invoke(main, ["archive", "serve", "-d", "nowhere"])
    assert result.exit_code == 1
    assert "has no index.html" in result.output and "newsletter archive build" in result.output
    assert "Traceback" not in result.output
    assert "archive build" in runner.invoke(main, ["archive", "--help"]).output


def test_search_reindexes_only_the_bundle_that_changed(project: Project) -> None:
    site = project.root / "site"
    first = build(project, search=True)
    assert first.search_shards == ["2019-2021", "2022-2024"] and first.search_pages == 3
    assert (site / "pagefind" / "2022-2024" / "pagefind.js").is_file()
    assert (site / "pagefind" / "2019-2021" / "pagefind.js").is_file()
    search_page = (site / "search" / "index.html").read_text("utf-8")
    assert """data-bundles='["pagefind/2022-2024/", "pagefind/2019-2021/"]'""" in search_page

    assert build(project, search=True).search_pages is None  # nothing changed

    path = project.root / "issues" / "2021-02-08.yaml"
    path.write_text(path.read_text("utf-8").replace("Second week story.", "Edited."), "utf-8")
    report = build(project, search=True)
    assert report.search_shards == ["2019-2021"] and report.search_pages == 2

    # A new issue rewrites its neighbour's page (the "next" link) but only its own
    # bundle is indexed again.
    write_issue(project.root, "2023-01-02", "Newest")
    report = build(project, search=True)
    assert sorted(report.pages_written) == [
        "issues/2022-03-07/index.html", "issues/2023-01-02/index.html"
    ]
    assert report.search_shards == ["2022-2024"] and report.search_pages == 2

    # Unpublishing every issue of a bundle removes the bundle.
    for name in (SAMPLE, "2021-02-08"):
        (project.root / "issues" / f"{name}.yaml").unlink()
    report = build(project, search=True)
    assert report.search_shards == ["2022-2024"]  # the remaining issues were renumbered
    assert sorted(p.name for p in (site / "pagefind").iterdir()) == ["2022-2024"]
    assert """data-bundles='["pagefind/2022-2024/"]'""" in (
        site / "search" / "index.html").read_text("utf-8")
    assert not [p for p in site.iterdir() if p.name.startswith(".pagefind")]


def test_two_builds_never_write_into_one_folder_at_once(project: Project) -> None:
    fcntl = pytest.importorskip("fcntl")
    site = project.root / "site"
    site.mkdir()
    fd = os.open(site, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(NewsletterError, match="Another `newsletter archive build`"):
            build(project)
    finally:
        os.close(fd)
    assert build(project).published == 3


def test_local_server_serves_pages_types_and_the_404_page(project: Project) -> None:
    build(project, search=True)
    with serving(project.root / "site") as url:
        with urllib.request.urlopen(f"{url}issues/{SAMPLE}/") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/html")
            assert b"Weekly Brief: leaked police files" in response.read()
        with urllib.request.urlopen(f"{url}feed.xml") as response:
            assert "xml" in response.headers["Content-Type"]
        with urllib.request.urlopen(f"{url}assets/search.js") as response:
            assert response.headers["Content-Type"].startswith("text/javascript")
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{url}issues/1999-01-01/")
        assert missing.value.code == 404
        assert b"Page not found" in missing.value.read()


def test_issue_numbers_match_the_email(project: Project) -> None:
    """The archive numbers issues in one pass; it must agree with load_issue (drafts count)."""
    write_issue(project.root, "2022-03-14", "A draft in between", draft=True)
    write_issue(project.root, "2022-03-21", "After the draft")
    build(project)
    index = doc(project.root / "site" / "index.html")
    shown = {
        a.get("href").split("/")[1]: a.getparent().getparent().cssselect(".meta")[0]
        .text_content().split("·")[0].strip()
        for a in index.cssselect("ol.issues h3 a")
    }
    files = project.issue_files()
    expected = {
        path.stem: f"No.\xa0{load_issue(path, files).number}"
        for path in files if not load_issue(path, files).model.draft
    }
    assert shown == expected
    assert shown["2022-03-21"] == "No.\xa05"


def test_the_build_state_is_never_published(project: Project) -> None:
    write_issue(project.root, "2022-03-21", "Secret merger plans", draft=True)
    build(project)
    site = project.root / "site"
    assert not (site / MANIFEST).exists()
    published = b"".join(p.read_bytes() for p in site.rglob("*") if p.is_file())
    assert b"Secret merger plans" not in published
    state = manifest_path(project, site)
    assert state.is_relative_to(project.root / ".newsletter") and state.is_file()


def test_an_old_manifest_in_site_moves_out_and_is_deleted(project: Project) -> None:
    build(project)
    site = project.root / "site"
    state = manifest_path(project, site)
    state.rename(site / MANIFEST)  # as a version before 0.2.0 left it
    report = build(project)
    assert not (site / MANIFEST).exists() and state.is_file()
    assert not report.pages_written  # the moved manifest still lets it skip every page
