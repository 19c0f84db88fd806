"""What readers see: the rendered email in headless Chromium at phone and desktop widths."""

from __future__ import annotations

import base64
import re
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
    # The hidden context is an inline block, so Chromium puts a space before its colon.
    more = page.get_by_role("link", name=re.compile(r"^Read more ?: \S"))
    assert more.count() == 8
    assert page.get_by_text("BuzzFeed.News · 14 January 2020 · Photo: Reuters").is_visible()
    footer = page.locator(".footer")
    footer.scroll_into_view_if_needed()
    assert footer.get_by_text("Postfach 1234, 80331 München").is_visible()
    unsubscribe = footer.get_by_role("link", name="Unsubscribe")
    assert unsubscribe.get_attribute("href") == "https://news.example.org/unsubscribe/"
    view = footer.get_by_role("link", name="View in your browser")
    assert view.get_attribute("href") == "https://news.example.org/issues/2021-02-01/"


# --- reader experience (issue 15) -------------------------------------------------------

TAP_MIN = 44  # px: Apple's guideline, WCAG 2.5.5
# Links inside running text (a sentence of a summary) are exempt, as WCAG 2.5.5 allows;
# the title, Read more, footer and logo links never are.
SMALL_LINKS_JS = """min => [...document.links]
  .filter(a => a.getClientRects().length)
  .filter(a => a.closest('.title, .more, .footer, .logo, .picture')
               || a.parentElement.textContent.trim() === a.textContent.trim())
  .map(a => { const r = a.getBoundingClientRect();
              return {text: a.textContent.trim().slice(0, 30), w: r.width, h: r.height}; })
  .filter(r => r.w < min || r.h < min)"""
# What email programs do with overflow-wrap and word-break: nothing.
NO_WRAP_CSS = "* { overflow-wrap: normal !important; word-break: normal !important; }"
LONG_WORD = "Donaudampfschifffahrtsgesellschaftskapitän"  # 42 characters, no break


@pytest.mark.parametrize("name", ["2021-02-01", "2026-01-05"])
def test_every_link_is_a_44px_tap_target_on_a_phone(
    new_page, emails: dict[str, Path], name: str
) -> None:
    page = open_email(new_page, emails[name], 375)
    assert page.evaluate("document.links.length") > 5
    assert page.evaluate(SMALL_LINKS_JS, TAP_MIN) == []


def test_images_off_logo_link_is_still_a_tap_target(new_page, emails: dict[str, Path]) -> None:
    page = new_page(width=375, height=800)  # every image request is refused
    page.goto(emails["2021-02-01"].as_uri())
    assert page.evaluate(SMALL_LINKS_JS, TAP_MIN) == []


def test_read_more_says_what_it_opens_in_text_every_client_keeps(
    new_page, emails: dict[str, Path]
) -> None:
    page = open_email(new_page, emails["2021-02-01"], 600)
    assert page.locator("a[aria-label]").count() == 0  # Outlook.com and Yahoo drop it
    more = page.locator("p.more a")
    assert more.count() == 8
    names = [more.nth(i).evaluate("a => a.textContent.replace(/\\s+/g, ' ')") for i in range(8)]
    assert names[0].startswith("Read more: ") and len(set(names)) == 8
    accessible = more.first.aria_snapshot()
    assert "Read more : Leaked Chinese Police Database" in accessible
    context = more.first.locator(".context")
    box = context.bounding_box()
    assert box is not None and box["width"] <= 1 and box["height"] <= 1


def test_a_40_character_word_does_not_widen_the_email_at_320px(
    new_page, sample_project: Path
) -> None:
    path = sample_project / "issues" / "2021-02-01.yaml"
    text = path.read_text(encoding="utf-8")
    first_title = text.split("title: ", 1)[1].split("\n", 1)[0]
    text = text.replace(first_title, f"{LONG_WORD} https://example.org/{'x' * 40}", 1)
    path.write_text(text, encoding="utf-8")
    page = open_email(new_page, _write(sample_project, "2021-02-01"), 320)
    page.add_style_tag(content=NO_WRAP_CSS)
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 320
    title = page.locator("h2.title a").first
    assert title.inner_text().replace("\u00ad", "").replace("\u200b", "").startswith(LONG_WORD)


def test_logo_alt_text_is_styled_when_images_are_off(new_page, emails: dict[str, Path]) -> None:
    page = new_page(width=600, height=800)  # every image request is refused
    page.goto(emails["2021-02-01"].as_uri())
    logo = page.get_by_alt_text("Example Rights Network")
    style = logo.evaluate(
        "e => { const s = getComputedStyle(e); "
        "return [s.fontFamily, s.fontSize, s.fontWeight, s.color]; }"
    )
    family, size, weight, colour = style
    assert "Times" not in family and "sans-serif" in family
    assert float(size.rstrip("px")) >= 16 and int(weight) >= 700
    assert colour == "rgb(29, 78, 137)"  # [brand] primary_color
