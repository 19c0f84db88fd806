"""The HTML report: one self-contained file (inline CSS and SVG, no scripts, nothing
fetched from the network) that can be attached to an email to a director."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from ..files import atomic_write
from . import charts
from .build import IssueReport, ListHealth

TEMPLATE_DIR = Path(__file__).parent


def _environment() -> Environment:
    environment = Environment(loader=FileSystemLoader(TEMPLATE_DIR),
                              autoescape=select_autoescape(["j2", "html"]),
                              trim_blocks=True, lstrip_blocks=True)
    environment.filters["pct"] = percent
    environment.filters["num"] = lambda n: f"{n:,}"
    return environment


def percent(value: float | None) -> str:
    """0.1234 → "12.3%"; None (nothing to divide by) → "–"."""
    return "–" if value is None else f"{100 * value:.1f}%"


def _growth_chart(weeks: list[Any], chart_id: str) -> Markup:
    return Markup(charts.growth_chart([w.start for w in weeks], [w.joined for w in weeks],
                                      [w.left for w in weeks], [w.bounced for w in weeks],
                                      chart_id))


def render_issue_report(report: IssueReport, newsletter_name: str) -> str:
    """The HTML of a campaign report."""
    figures = report.figures
    stories = [s for s in report.stories if s.clicks or s.index]
    rows = report.previous + [figures]
    context = {
        "name": newsletter_name, "report": report, "f": figures,
        "stories": stories, "notes": report.notes,
        "stories_chart": Markup(charts.stories_chart(
            [s.title for s in stories], [s.clickers for s in stories],
            [s.clicks for s in stories])) if any(s.clicks for s in stories) else None,
        "hours_chart": Markup(charts.hourly_chart(report.hours))
        if figures.source in ("webhook", "counts") else None,
        "previous_chart": Markup(charts.previous_chart(
            [r.issue for r in rows], [r.open_rate for r in rows],
            [r.click_rate for r in rows])) if report.previous else None,
        "growth_chart": _growth_chart(report.weeks, "chart-growth"),
    }
    return _environment().get_template("report.html.j2").render(kind="issue", **context)


def render_list_health(health: ListHealth, newsletter_name: str) -> str:
    """The HTML of a list's health report."""
    return _environment().get_template("report.html.j2").render(
        kind="list", name=newsletter_name, health=health,
        growth_chart=_growth_chart(health.weeks, "chart-growth"))


def write_html(path: Path, text: str) -> None:
    """Write the report (whole or not at all)."""
    atomic_write(path, text.encode("utf-8"))
