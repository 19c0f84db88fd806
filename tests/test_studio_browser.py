"""A comms person's week in the studio, in headless Chromium, through labels and roles only.

Set NEWSLETTER_SCREENSHOTS=1 to refresh the screenshots in docs/images/studio-*.png.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from newsletter.cli import main
from newsletter.project import Project
from newsletter.studio import create_app
from tests.plugins.browser import LOCAL_PREFIXES
from tests.plugins.fake_sendgrid import SECRET, populate
from tests.servers import serve_asgi

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
AXE = REPO / "bench" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO / "docs" / "images"
ARTICLE = (Path(__file__).parent / "pages" / "opengraph.html").read_text(encoding="utf-8")


@pytest.fixture
def article_url() -> Iterator[str]:
    """An article page, served on 127.0.0.1 as a newspaper's site would serve it."""
    app = Starlette(routes=[Route("/news/solar", lambda _: HTMLResponse(ARTICLE))])
    with serve_asgi(app) as url:
        yield f"{url}/news/solar"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh `newsletter init` project, with a list 'weekly' of 25 people."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEWSLETTER_DATABASE_URL", raising=False)
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    result = CliRunner().invoke(main, ["init", "brief", "--name", "Weekly Brief"])
    assert result.exit_code == 0, result.output
    root = tmp_path / "brief"
    populate(Project(root), "weekly", 25)
    return root


@pytest.fixture
def studio_page(browser, project: Path):  # type: ignore[no-untyped-def]
    """Factory of pages (of a width) on a running studio; the studio's URL as .base."""
    contexts = []
    with serve_asgi(create_app(project)) as url:

        def make(width: int = 1280, height: int = 900):  # type: ignore[no-untyped-def]
            # bypass_csp only so that axe-core can be injected; the studio's own
            # scripts are files under /static, allowed by its policy.
            context = browser.new_context(viewport={"width": width, "height": height},
                                          bypass_csp=True)
            contexts.append(context)
            page = context.new_page()
            page.route("**/*", lambda route: route.continue_()
                       if route.request.url.startswith(LOCAL_PREFIXES) else route.abort())
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.js_errors = errors
            return page

        make.base = url
        yield make
        for context in contexts:
            context.close()


def axe_violations(page) -> list[str]:  # type: ignore[no-untyped-def]
    page.add_script_tag(path=str(AXE))
    return page.evaluate(
        "async () => (await axe.run(document)).violations.map("
        "v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))")


def no_horizontal_scroll(page) -> bool:  # type: ignore[no-untyped-def]
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def screenshot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    if os.environ.get("NEWSLETTER_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"studio-{name}.png"), full_page=False)


def saved(page) -> None:  # type: ignore[no-untyped-def]
    """Wait until the autosave after the last keystroke has answered."""
    page.get_by_role("status").filter(has_text=re.compile("^Saved at")).wait_for()


def photo_file(tmp_path: Path) -> Path:
    image = Image.new("RGB", (1600, 1000), (30, 90, 160))
    info = Image.Exif()
    info[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 0.0)}
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=info)
    path = tmp_path / "panels.jpg"
    path.write_bytes(out.getvalue())
    return path


def test_a_comms_persons_week(studio_page, project: Path, article_url: str,  # type: ignore[no-untyped-def]
                              fake_sendgrid, tmp_path: Path) -> None:
    page = studio_page()
    page.goto(studio_page.base + "/")
    assert axe_violations(page) == []
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"

    # Monday: start the next issue and write its subject and intro.
    page.get_by_role("button", name="New issue").click()
    page.get_by_label("Subject").wait_for()
    name = page.url.rstrip("/").rsplit("/", 1)[1]
    issue_file = project / "issues" / f"{name}.yaml"
    page.get_by_label("Subject").fill("Solar panels and forced labour")
    page.get_by_label("Preheader").fill("Where the panels on our roofs come from.")
    page.get_by_label("Intro").fill("Good morning. One story this week.")
    saved(page)
    text = issue_file.read_text(encoding="utf-8")
    assert "subject: Solar panels and forced labour" in text
    assert text.startswith("# Issue 2. Format: docs/issue-format.md")  # comment kept

    # Add the story from its link; the example item goes.
    page.get_by_label("Links to add (one per line)").fill(article_url)
    page.get_by_role("button", name="Add from link").click()
    page.get_by_text("Added item 2: Solar Companies Rely on Materials From Xinjiang").wait_for()
    page.get_by_role("group", name=re.compile("^Item 1")).get_by_role(
        "button", name="Remove").click()
    item = page.get_by_role("group", name=re.compile("^Item 1: Solar Companies"))
    assert item.get_by_label("Source").input_value() == "The Daily Example"
    assert item.get_by_label("Published").input_value() == "2021-01-14"

    # A photo of our own, described.
    item.get_by_label("Choose a photo").set_input_files(str(photo_file(tmp_path)))
    item.get_by_role("button", name="Upload photo").click()
    page.get_by_text("Photo added to item 1").wait_for()
    item = page.get_by_role("group", name=re.compile("^Item 1"))
    assert re.fullmatch(r"https://news\.example\.org/media/[0-9a-f]{20}\.jpg",
                        item.get_by_label("Image", exact=True).input_value())
    item.get_by_label("Image description").fill("Rows of solar panels under a blue sky")
    saved(page)
    assert len(list((project / "media").iterdir())) == 1

    # A bad link: the error appears beside the field, and sending waits for the fix.
    item.get_by_label("Link").fill("www example org")
    error = page.locator("#d-items-0-url")
    error.get_by_text("expected a full web address starting with http:// or https://").wait_for()
    assert page.get_by_role("button", name="Send to list").is_disabled()
    assert page.get_by_role("button", name="Send test").is_disabled()
    screenshot(page, "error")
    item.get_by_label("Link").fill(article_url)
    saved(page)
    page.get_by_role("button", name="Send to list").and_(
        page.locator(":enabled")).wait_for()
    assert error.inner_text() == ""
    assert axe_violations(page) == []
    screenshot(page, "editor")

    # The phone preview: the real email, no sideways scrolling.
    page.get_by_role("button", name="Phone").click()
    frame_element = page.get_by_title("Email preview")
    assert frame_element.get_attribute("class") == "phone"
    frame = frame_element.element_handle().content_frame()
    frame.wait_for_load_state()
    frame.get_by_text("Solar Companies Rely on Materials From Xinjiang").first.wait_for()
    assert frame.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert frame.evaluate("window.innerWidth") == 375
    phone = studio_page(375)
    phone.goto(f"{studio_page.base}/issues/{name}")
    assert no_horizontal_scroll(phone)
    assert axe_violations(phone) == []
    screenshot(phone, "phone")

    # A test to myself: it lands in the outbox.
    page.get_by_label("Send a test to").fill("me@example.org")
    page.get_by_role("button", name="Send test").click()
    page.get_by_text("Test sent to 1 address(es)").wait_for()
    assert len(list((project / "outbox" / f"{name}-test").glob("*.eml"))) == 1

    # Thursday: the real send, through SendGrid, confirmed by typing the list's name.
    config = project / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        'transport = "outbox"', 'transport = "sendgrid"'), encoding="utf-8")
    page.get_by_role("button", name="Send to list").click()
    summary = page.get_by_role("table")
    for label, value in [("Subject", "Solar panels and forced labour"), ("List", "weekly"),
                         ("Recipients", "25"), ("Transport", "sendgrid")]:
        assert summary.get_by_role("row", name=label).get_by_role("cell").inner_text() == value
    warnings = page.get_by_role("region", name="Warnings")
    assert warnings.get_by_text(f"issues/{name}.yaml:").first.inner_text().startswith("issues/")
    assert axe_violations(page) == []
    screenshot(page, "send")
    page.get_by_label("To send, type the list's name: weekly").fill("weekly")
    page.get_by_role("button", name="Send to list").click()
    page.get_by_role("status").filter(has_text=re.compile("^Done: 25 of 25")).wait_for(
        timeout=30_000)
    assert sum(fake_sendgrid.delivered().values()) == 25
    assert axe_violations(page) == []
    screenshot(page, "progress")
    page.get_by_role("link", name="All issues").click()
    assert page.locator("li", has_text="Solar panels").get_by_text("sent").is_visible()
    assert not page.js_errors


def test_drag_a_story_to_reorder(studio_page, project: Path) -> None:  # type: ignore[no-untyped-def]
    page = studio_page(height=2400)  # both stories in view: no scrolling while dragging
    page.goto(f"{studio_page.base}/issues/2026-01-05")
    first = page.get_by_role("group", name=re.compile("^Item 1"))
    second = page.get_by_role("group", name=re.compile("^Item 2"))
    title = second.get_by_label("Title").input_value()
    second.locator("legend").drag_to(first.get_by_label("Title"))
    page.get_by_role("group", name=re.compile(f"^Item 1: {re.escape(title)}")).wait_for()
    text = (project / "issues" / "2026-01-05.yaml").read_text(encoding="utf-8")
    assert text.index(f"title: {title}") < text.index("title: A story from a newspaper")
    assert not page.js_errors
