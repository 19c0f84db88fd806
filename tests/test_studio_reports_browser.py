"""An issue's report in the studio, in headless Chromium, through roles and labels only:
from the list of issues to the report, its charts under the studio's policies, on a phone.

Set NEWSLETTER_SCREENSHOTS=1 to refresh docs/images/studio-report.png.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.issue import load_issue
from newsletter.project import Project
from newsletter.studio import create_app
from tests.servers import serve_asgi
from tests.test_studio_reports import ISSUE, known_mix, send, store_events

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "images"


@pytest.fixture
def studio_url(send_project: Project) -> Iterator[str]:
    """A studio on the sample project, its issue sent to 'weekly' with a known mix of events."""
    urls = [item.url for item in load_issue(send_project.root / "issues" / f"{ISSUE}.yaml")
            .items]
    store_events(send_project, known_mix(send(send_project), urls))
    with serve_asgi(create_app(send_project.root)) as url:
        yield url


@pytest.mark.parametrize("width", [375, 1280])
def test_from_the_issues_to_the_report_and_its_charts(new_page, studio_url: str,  # type: ignore[no-untyped-def]
                                                      width: int) -> None:
    page = new_page(width, 900)
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text else None)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(studio_url)
    page.get_by_role("link", name=f"Report on {ISSUE}").click()
    page.get_by_role("heading", name=f"Report: issue {ISSUE} to “weekly”").wait_for()
    assert page.get_by_role("link", name="Download the report (HTML)").count() == 1
    assert page.get_by_role("link", name="Download the stories as CSV").count() == 1

    report = page.frame_locator(f"iframe[title='Report on issue {ISSUE} to weekly']")
    stories = report.get_by_role("img", name="Clicks per story")
    stories.wait_for()
    assert ": 3 readers, 4 clicks" in report.locator("#chart-stories-desc").text_content()
    growth = report.get_by_role("img", name="List growth, last 26 weeks")
    assert growth.count() == 1
    box = stories.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 100  # drawn, styled
    fill = report.locator("#chart-stories path").first.evaluate(
        "p => getComputedStyle(p).fill")
    assert fill != "rgb(0, 0, 0)"  # the chart's inline styles hold inside the frame

    # The frame is as tall as the report: one scroll bar, never a sideways one.
    frame = page.locator("iframe.report")
    page.wait_for_function("document.querySelector('iframe.report').offsetHeight > 1000")
    inner = frame.element_handle().content_frame()
    assert inner is not None
    assert inner.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert refused == [] and errors == []
    if width == 1280 and os.environ.get("NEWSLETTER_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "studio-report.png"),
                        clip={"x": 0, "y": 0, "width": width, "height": 1100}, full_page=True)
