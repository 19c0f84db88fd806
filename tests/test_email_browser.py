"""What readers see: the rendered email in headless Chromium at phone and desktop widths."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from newsletter.issue import load_issue
from newsletter.project import Project
from newsletter.render import render_email

from .test_render import FULL

pytestmark = pytest.mark.browser

# A 4x3 grey PNG, served for every picture so that layout has real image sizes.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAAEklEQVR4nGNoaGj4jwQYiOQDAFzvF/F/rc4lAAAA"
    "AElFTkSuQmCC"
)


def _write(sample_project: Path, name: str) -> Path:
    project = Project(sample_project)
    issue_path = sample_project / "issues" / f"{name}.yaml"
    issue = load_issue(issue_path, project.issue_files())
    out = sample_project / f"{name}.html"
    out.write_text(render_email(project, issue).html, encoding="utf-8")
    return out


@pytest.fixture
def emails(sample_project: Path) -> dict[str, Path]:
    (sample_project / "issues" / "2026-01-05.yaml").write_text(FULL, encoding="utf-8")
    return {name: _write(sample_project, name) for name in ("2021-02-01", "2026-01-05")}


def open_email(new_page, path: Path, width: int):  # type: ignore[no-untyped-def]
    page = new_page(width=width, height=800)
    page.route(
        "https://**/*.{png,jpg}",
        lambda route: route.fulfill(status=200, content_type="image/png", body=PNG),
    )
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page


@pytest.mark.parametrize("name", ["2021-02-01", "2026-01-05"])
def test_phone_width_has_no_horizontal_scroll_and_every_title_shows(
    new_page, emails: dict[str, Path], name: str
) -> None:
    page = open_email(new_page, emails[name], 375)
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 375
    titles = page.locator("h2.title a")
    assert titles.count() == (8 if name == "2021-02-01" else 2)
    for index in range(titles.count()):
        title = titles.nth(index)
        title.scroll_into_view_if_needed()
        assert title.is_visible()
        box = title.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
        assert box["height"] > 10


def test_desktop_layout_puts_picture_beside_text_and_phone_stacks_it(
    new_page, emails: dict[str, Path]
) -> None:
    boxes = {}
    for width in (600, 375):
        page = open_email(new_page, emails["2026-01-05"], width)
        image = page.get_by_alt_text("A crowd outside parliament")
        title = page.get_by_role("link", name="With a picture", exact=True)
        boxes[width] = (image.bounding_box(), title.bounding_box())
    (image, title) = boxes[600]
    assert image["x"] + image["width"] <= title["x"], "picture left of the text at 600 px"
    assert abs(image["y"] - title["y"]) < 60, "side by side"
    assert 150 < image["width"] < 230  # a 36% column of 600 px, less padding
    (image, title) = boxes[375]
    assert image["y"] + image["height"] <= title["y"], "picture above the text on a phone"
    assert image["width"] > 300


def test_content_body_is_600px_wide_on_desktop(new_page, emails: dict[str, Path]) -> None:
    page = open_email(new_page, emails["2021-02-01"], 1024)
    width = page.evaluate(
        "Math.round(document.querySelector('.title').closest('table').getBoundingClientRect()"
        ".width)"
    )
    assert 560 <= width <= 600


def test_accessibility_basics_and_hidden_preheader(new_page, emails: dict[str, Path]) -> None:
    page = open_email(new_page, emails["2026-01-05"], 600)
    assert page.evaluate("document.documentElement.lang") == "en"
    missing_alt = page.evaluate(
        "[...document.images].filter(i => !i.hasAttribute('alt') || !i.alt.trim()).length"
    )
    assert missing_alt == 0
    assert page.evaluate("document.images.length") == 2  # logo and the item's picture
    assert page.get_by_alt_text("Example Rights Network").is_visible()
    preheader = page.get_by_text("PREHEADER-MARKER", exact=False)
    assert preheader.count() == 1
    assert not preheader.is_visible()
    assert page.title() == "Everything at once"


def test_header_items_and_footer_are_all_there(new_page, emails: dict[str, Path]) -> None:
    page = open_email(new_page, emails["2021-02-01"], 600)
    assert page.get_by_role("heading", name="East Turkistan Weekly Brief").is_visible()
    assert page.get_by_text("No. 1 · 1 February 2021").is_visible()
    more = page.get_by_role("link", name="Read more:")
    assert more.count() == 8
    assert page.get_by_text("BuzzFeed.News · 14 January 2020 · Photo: Reuters").is_visible()
    footer = page.locator(".footer")
    footer.scroll_into_view_if_needed()
    assert footer.get_by_text("Postfach 1234, 80331 München").is_visible()
    unsubscribe = footer.get_by_role("link", name="Unsubscribe")
    assert unsubscribe.get_attribute("href") == "https://news.example.org/unsubscribe/"
    view = footer.get_by_role("link", name="View in your browser")
    assert view.get_attribute("href") == "https://news.example.org/issues/2021-02-01/"
