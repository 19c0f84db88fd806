"""The HTML report in Chromium: charts visible, no sideways scroll at 375 px, axe-core clean."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from newsletter.reports import issue_report, list_health
from newsletter.reports.html import render_issue_report, render_list_health
from tests.test_report import ISSUE, simulated  # noqa: F401  (the fixture)

AXE = Path(__file__).resolve().parents[1] / "bench" / "node_modules" / "axe-core" / "axe.min.js"

pytestmark = pytest.mark.browser


@pytest.fixture
def report_file(simulated, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]  # noqa: F811
    service, _mix = simulated
    report = issue_report(service.project, service.project.root / "issues" / f"{ISSUE}.yaml")
    page = tmp_path / "report.html"
    page.write_text(render_issue_report(report, "Weekly Brief"), encoding="utf-8")
    health = tmp_path / "health.html"
    health.write_text(render_list_health(list_health(service.project, "weekly"), "Weekly Brief"),
                      encoding="utf-8")
    return page


def test_the_report_is_self_contained(report_file: Path) -> None:
    text = report_file.read_text(encoding="utf-8")
    assert "<script" not in text.lower()
    assert not re.search(r'(src|href)="(?!https://|#)', text)  # nothing loaded, only links out
    assert "<link" not in text and "@import" not in text
    assert text.count('role="img"') == 4  # stories, 72 hours, previous issues, growth
    for chart in ("chart-stories", "chart-hours", "chart-previous", "chart-growth"):
        assert f'aria-labelledby="{chart}-title {chart}-desc"' in text


def test_the_same_data_gives_the_same_file(simulated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    service, _mix = simulated
    path = service.project.root / "issues" / f"{ISSUE}.yaml"
    now = dt.datetime.now(dt.UTC)
    first = render_issue_report(issue_report(service.project, path, now=now), "W")
    assert first == render_issue_report(issue_report(service.project, path, now=now), "W")


@pytest.mark.parametrize("name", ["report.html", "health.html"])
def test_charts_visible_no_sideways_scroll_and_axe_clean(new_page, report_file: Path,  # type: ignore[no-untyped-def]
                                                        name: str) -> None:
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run `npm ci` in bench/")
    page = new_page(width=375, height=800)
    page.goto((report_file.parent / name).as_uri())
    charts = page.locator("svg.chart")
    assert charts.count() >= 1
    for index in range(charts.count()):
        chart = charts.nth(index)
        chart.scroll_into_view_if_needed()
        assert chart.is_visible()
        box = chart.bounding_box()
        assert box and box["width"] > 200 and box["height"] > 80 and box["width"] <= 375
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.evaluate("document.body.scrollWidth") <= 375
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document)")
    violations = [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]]
    assert violations == []
    assert page.blocked_requests == []
