"""The archive in headless Chromium, served over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.archive import build_archive, serving
from newsletter.project import Project

from .test_archive_helpers import HOSTILE_SUBJECT, HOSTILE_SUMMARY, HOSTILE_TITLE, write_issue

pytestmark = pytest.mark.browser

LONG_URL = "https://example.org/" + "a-very-long-path-segment-without-spaces" * 6
LONG_WORD = "Donaudampfschifffahrtsgesellschaftskapitänswitwenrentenversicherung" * 2
SEARCH_WORD = "quetzalcoatlus"


@pytest.fixture
def site(sample_project: Path) -> Iterator[str]:
    write_issue(sample_project, "2021-02-08", "Second week",
                ["An ordinary week.", f"Fossils of {SEARCH_WORD} were found in Texas."])
    write_issue(sample_project, "2022-03-07", HOSTILE_SUBJECT,
                [HOSTILE_SUMMARY, f"Long link: {LONG_URL} and {LONG_WORD}."],
                titles=[HOSTILE_TITLE, f"Headline with {LONG_WORD}"])
    write_issue(sample_project, "2022-03-14", "Draft only", [f"{SEARCH_WORD} draft"], draft=True)
    report = build_archive(Project(sample_project), sample_project / "site")
    assert report.search_pages == 3
    with serving(sample_project / "site") as url:
        yield url


def open_page(new_page, url: str, width: int = 1024):  # type: ignore[no-untyped-def]
    page = new_page(width=width)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.js_errors = errors
    page.goto(url)
    page.wait_for_load_state("load")
    return page


def test_index_lists_issues_and_a_link_opens_the_issue(new_page, site: str) -> None:
    page = open_page(new_page, site)
    assert page.locator("html").get_attribute("lang") == "en"
    links = page.locator("ol.issues h3 a")
    assert links.count() == 3
    assert links.nth(0).inner_text() == HOSTILE_SUBJECT
    assert page.locator("section.year h2").all_inner_texts() == ["2022", "2021"]
    assert "Draft only" not in page.content()
    page.get_by_role("link", name="Second week").click()
    page.wait_for_load_state("load")
    assert page.url == f"{site}issues/2021-02-08/"
    assert page.locator("h1").inner_text() == "Second week"
    assert page.locator("article.item").count() == 2
    # Previous/next navigation and the way back.
    page.locator("a[rel=prev]").click()
    page.wait_for_load_state("load")
    assert page.url == f"{site}issues/2021-02-01/"
    page.get_by_role("link", name="All issues").click()
    page.wait_for_load_state("load")
    assert page.url == site
    assert not page.js_errors


def test_an_item_anchor_scrolls_to_the_story(new_page, site: str) -> None:
    page = open_page(new_page, f"{site}issues/2021-02-08/#story-2-of-2021-02-08", width=375)
    heading = page.locator("#story-2-of-2021-02-08")
    assert heading.inner_text() == "Story 2 of 2021-02-08"
    assert page.evaluate("window.scrollY") > 0
    assert heading.is_visible()


@pytest.mark.parametrize("via_form", [False, True])
def test_search_finds_the_issue_by_a_word_from_a_summary(
    new_page, site: str, via_form: bool
) -> None:
    if via_form:
        page = open_page(new_page, site)
        page.get_by_label("Search all issues").fill(SEARCH_WORD)
        page.get_by_role("button", name="Search").click()
    else:
        page = open_page(new_page, f"{site}search/?q={SEARCH_WORD}")
    result = page.locator(".pagefind-ui__result-link").first
    result.wait_for(timeout=15000)
    results = page.locator(".pagefind-ui__result")
    assert results.count() == 1  # the draft that mentions it is not published
    link = results.first.locator(".pagefind-ui__result-link").first
    assert link.get_attribute("href") == "/issues/2021-02-08/"
    assert link.inner_text() == "Second week"
    # The story itself is linked by its anchor.
    story = results.first.locator(".pagefind-ui__result-nested a")
    assert story.first.get_attribute("href") == "/issues/2021-02-08/#story-2-of-2021-02-08"
    result.click()
    page.wait_for_load_state("load")
    assert page.url.startswith(f"{site}issues/2021-02-08/")
    assert not page.js_errors
    # Search fetches nothing from elsewhere (the logo is the sample's only outside address).
    assert set(page.blocked_requests) <= {"https://news.example.org/logo.png"}


def test_search_merges_every_year(new_page, site: str) -> None:
    """The index is one bundle per year; words found in both years find both issues."""
    page = open_page(new_page, f"{site}search/?q=Example%20Times")
    page.locator(".pagefind-ui__result").nth(1).wait_for(timeout=15000)
    titles = page.locator(".pagefind-ui__result-inner > .pagefind-ui__result-title > a")
    hrefs = titles.evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert sorted(hrefs) == ["/issues/2021-02-08/", "/issues/2022-03-07/"]


@pytest.mark.parametrize("path", ["", "issues/2022-03-07/", "issues/2021-02-01/", "search/",
                                  "no/such/page"])
def test_nothing_scrolls_sideways_at_375_px(new_page, site: str, path: str) -> None:
    page = open_page(new_page, site + path, width=375)
    if path == "search/":
        page.locator(".pagefind-ui__search-input").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.evaluate("document.body.scrollWidth") <= 375


def test_html_in_items_is_shown_as_text(new_page, site: str) -> None:
    for path in ("", "issues/2022-03-07/"):
        page = open_page(new_page, site + path)
        assert page.evaluate("window.pwned") is None
        assert HOSTILE_SUBJECT in page.locator("main").inner_text()
    title = page.locator(".item-title").first
    assert title.inner_text() == HOSTILE_TITLE
    assert '<img src="x" onerror="window.pwned = 2">' in page.locator(".summary").first.inner_text()
    search = open_page(new_page, f"{site}search/?q=Jerry")
    search.locator(".pagefind-ui__result-link").first.wait_for(timeout=15000)
    assert search.evaluate("window.pwned") is None


def test_keyboard_focus_is_visible_and_skip_link_works(new_page, site: str) -> None:
    page = open_page(new_page, f"{site}issues/2021-02-01/")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.className")
    assert focused == "skip"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")
    assert page.evaluate("document.activeElement.getBoundingClientRect().left") >= 0
    page.keyboard.press("Enter")
    assert page.url.endswith("#main")


def test_light_and_dark_colour_schemes(new_page, site: str) -> None:
    page = open_page(new_page, f"{site}issues/2021-02-01/")
    page.emulate_media(color_scheme="light")
    light = page.evaluate("getComputedStyle(document.body).backgroundColor")
    light_text = page.evaluate("getComputedStyle(document.body).color")
    assert light == "rgb(244, 241, 234)"  # [brand] background_color #f4f1ea
    assert light_text == "rgb(31, 35, 40)"  # [brand] text_color #1f2328
    page.emulate_media(color_scheme="dark")
    dark = page.evaluate("getComputedStyle(document.body).backgroundColor")
    dark_text = page.evaluate("getComputedStyle(document.body).color")
    assert dark != light and dark_text != light_text
    assert dark == "rgb(18, 20, 23)"


def test_the_site_works_from_a_sub_folder(new_page, sample_project: Path) -> None:
    """Static hosts often serve a project under /NAME/: links and search must still work."""
    write_issue(sample_project, "2021-02-08", "Second week", [f"About {SEARCH_WORD}."])
    host = sample_project / "host"
    build_archive(Project(sample_project), host / "archive")
    (host / "index.html").write_text("<!doctype html><title>Host</title>", encoding="utf-8")
    with serving(host) as url:
        page = open_page(new_page, f"{url}archive/")
        page.get_by_role("link", name="Second week").click()
        page.wait_for_load_state("load")
        assert page.url == f"{url}archive/issues/2021-02-08/"
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == (
            "rgb(244, 241, 234)")  # the stylesheet was found
        page.get_by_role("link", name="Search", exact=True).click()
        page.get_by_role("textbox").first.fill(SEARCH_WORD)
        result = page.locator(".pagefind-ui__result-title > a").first
        result.wait_for(timeout=15000)
        assert result.get_attribute("href") == "/archive/issues/2021-02-08/"
        result.click()
        page.wait_for_load_state("load")
        assert page.url == f"{url}archive/issues/2021-02-08/"
        assert not page.js_errors
