"""The archive for readers on phones and with assistive technology (issue 15): 44 px
links at 375 px, a labelled search box, Pagefind's results at the body's text size, and
a 404 page that keeps its font."""

from __future__ import annotations

import pytest

from .test_archive_browser import SEARCH_WORD, open_page, site  # noqa: F401 - fixture
from .test_email_browser import SMALL_LINKS_JS, TAP_MIN

pytestmark = pytest.mark.browser

PAGES = ["", "issues/2021-02-01/", "issues/2022-03-07/", f"search/?q={SEARCH_WORD}", "404.html"]


@pytest.mark.parametrize("path", PAGES)
def test_every_link_is_a_44px_tap_target_at_375px(new_page, site: str, path: str) -> None:  # noqa: F811
    page = open_page(new_page, site + path, width=375)
    if path.startswith("search/"):
        page.locator(".pagefind-ui__result-link").first.wait_for(timeout=15000)
    assert page.evaluate("document.links.length") >= 3
    assert page.evaluate(SMALL_LINKS_JS, TAP_MIN) == []


def test_story_permalinks_are_big_enough_and_say_what_they_link(new_page, site: str) -> None:  # noqa: F811
    page = open_page(new_page, f"{site}issues/2021-02-01/", width=375)
    permalink = page.locator("a.permalink").first
    box = permalink.bounding_box()
    assert box is not None and box["width"] >= TAP_MIN and box["height"] >= TAP_MIN
    assert "Link to this story: " in permalink.aria_snapshot()
    assert page.locator("a[aria-label]").count() == 0


def test_search_box_has_a_real_label_and_results_use_the_body_size(
    new_page, site: str  # noqa: F811
) -> None:
    page = open_page(new_page, f"{site}search/?q={SEARCH_WORD}")
    page.locator(".pagefind-ui__result-link").first.wait_for(timeout=15000)
    labels = page.evaluate(
        "[...document.querySelector('#search input').labels].map(l => l.textContent)")
    assert labels == ["Search all issues"]
    body = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    sizes = page.evaluate(
        "[...document.querySelectorAll('.pagefind-ui__result-excerpt, .pagefind-ui__result-link')]"
        ".map(e => parseFloat(getComputedStyle(e).fontSize))")
    assert sizes and min(sizes) >= body


def test_404_page_keeps_its_font(new_page, site: str) -> None:  # noqa: F811
    page = open_page(new_page, f"{site}404.html")
    css = page.locator("style").first.text_content()
    assert '"Segoe UI"' in css and "&#34;" not in css
    assert "Segoe UI" in page.evaluate("getComputedStyle(document.body).fontFamily")
