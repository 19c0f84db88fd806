"""Dark mode: the email in Chromium with prefers-color-scheme: dark emulated.

Text and links must reach WCAG AA contrast (4.5:1) on the dark background, measured
from computed styles, and a screenshot must really be dark (not a white page)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from newsletter.issue import load_issue
from newsletter.project import Project
from newsletter.render import render_email

from .test_email_browser import emails, open_email  # noqa: F401 - fixture

pytestmark = pytest.mark.browser

CONTRAST_JS = (Path(__file__).parent / "contrast.js").read_text(encoding="utf-8")
WCAG_AA = 4.5
# Mean brightness of a screenshot decoded in the browser (0 black to 255 white).
MEAN_BRIGHTNESS_JS = """async (src) => {
  const img = new Image(); img.src = src; await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = img.width; canvas.height = img.height;
  const ctx = canvas.getContext("2d"); ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, img.width, img.height).data;
  let sum = 0;
  for (let i = 0; i < data.length; i += 4) sum += (data[i] + data[i + 1] + data[i + 2]) / 3;
  return sum / (data.length / 4);
}"""


def open_dark(new_page, path: Path, width: int = 600):  # type: ignore[no-untyped-def]
    page = open_email(new_page, path, width)
    page.emulate_media(color_scheme="dark")
    return page


def low_contrast(page) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    texts = page.evaluate(CONTRAST_JS)
    assert len(texts) > 20, "the page shows its text"
    return [text for text in texts if text["ratio"] < WCAG_AA]


@pytest.mark.parametrize("name", ["2021-02-01", "2026-01-05"])
def test_dark_mode_text_and_links_meet_wcag_aa(new_page, emails: dict[str, Path],  # noqa: F811
                                               name: str) -> None:
    page = open_dark(new_page, emails[name])
    assert low_contrast(page) == []
    texts = page.evaluate(CONTRAST_JS)
    assert all(text["bgLuminance"] < 0.05 for text in texts), "every text sits on a dark background"
    links = page.evaluate("[...document.links].map(a => getComputedStyle(a).color)")
    assert links and "rgb(29, 78, 137)" not in links  # not the light scheme's dark blue


def test_light_mode_is_unchanged(new_page, emails: dict[str, Path]) -> None:  # noqa: F811
    page = open_email(new_page, emails["2021-02-01"], 600)
    page.emulate_media(color_scheme="light")
    assert low_contrast(page) == []
    texts = page.evaluate(CONTRAST_JS)
    assert all(text["bgLuminance"] > 0.8 for text in texts)


def test_dark_mode_screenshot_is_dark_and_the_logo_stays_visible(
    new_page, emails: dict[str, Path], tmp_path: Path  # noqa: F811
) -> None:
    page = open_dark(new_page, emails["2026-01-05"])
    shot = page.screenshot(full_page=True, path=str(tmp_path / "dark.png"))
    source = "data:image/png;base64," + base64.b64encode(shot).decode()
    viewer = new_page(width=200, height=200)
    assert viewer.evaluate(MEAN_BRIGHTNESS_JS, source) < 70
    logo = page.get_by_alt_text("Example Rights Network")
    assert logo.is_visible()
    # Without a dark logo, the light one gets a white backing so it stays visible.
    assert logo.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(255, 255, 255)"
    for selector in ('meta[name="color-scheme"]', 'meta[name="supported-color-schemes"]'):
        assert page.locator(selector).get_attribute("content") == "light dark"


def test_logo_dark_url_swaps_the_logo_in_dark_mode(new_page, sample_project: Path) -> None:
    toml = sample_project / "newsletter.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace(
        'logo_width = 160', 'logo_width = 160\nlogo_dark_url = "https://news.example.org/logo-dark.png"'),
        encoding="utf-8")
    project = Project(sample_project)
    issue = load_issue(project.issues_dir / "2021-02-01.yaml", project.issue_files())
    html = render_email(project, issue).html
    assert "[data-ogsc]" in html and "[data-ogsb]" in html  # Outlook.com's dark mode
    path = sample_project / "dark-logo.html"
    path.write_text(html, encoding="utf-8")
    shown = {}
    for scheme in ("light", "dark"):
        page = open_email(new_page, path, 600)
        page.emulate_media(color_scheme=scheme)
        shown[scheme] = page.evaluate(
            "[...document.images].filter(i => i.getClientRects().length && i.width > 0)"
            ".map(i => i.getAttribute('src')).filter(s => s.includes('logo'))")
    assert shown == {"light": ["https://news.example.org/logo.png"],
                     "dark": ["https://news.example.org/logo-dark.png"]}
