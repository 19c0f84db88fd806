"""The reports in the studio: an issue's report per list it went to, and each list's health.

GET /reports                                  the sent issues and the lists, with links
GET /issues/NAME/report                       the issue's list(s): one → its report
GET /issues/NAME/report/LIST                  the report in the studio's layout
GET /issues/NAME/report/LIST/report.html      the self-contained report (?download=1)
GET /issues/NAME/report/LIST/stories.csv      the click map, for spreadsheets
GET /lists/LIST/health                        the list's health (and /health.html)

The report is ``newsletter report``'s own HTML page. Its charts are matplotlib SVG with
inline styles, which the studio's policy (``style-src 'self'``) would strip, so the page
frames it: the framed report gets a policy of its own that allows inline styles and no
scripts at all, as the email preview does. Anyone who may open the issues may read the
reports (they hold counts, no addresses).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..errors import NewsletterError
from ..project import Project
from ..reports import IssueReport, ListHealth, issue_report, list_health
from ..reports.export import stories_csv
from ..reports.html import render_issue_report, render_list_health
from ..store import list_summaries
from .editor import issue_path
from .issues import IssueRow, issue_rows, report_lists
from .security import require
from .state import StudioState, page, redirect, state

PERMISSION = "edit"  # whoever may open the issues may read their reports
WEEKS = 26
FRESH_SECONDS = 120  # the frame and the downloads reuse the report the page just built
KEPT = 16
# The framed report: its own inline styles and SVG, nothing fetched, no scripts.
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
              "frame-ancestors 'self'; base-uri 'none'; form-action 'none'")
T = TypeVar("T")
NOT_SENT = "This issue has not been sent yet: its report appears here after Send to list."


def _file_name(*parts: str) -> str:
    """A download's file name: the parts, joined, in letters, digits, dots and dashes only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts))


def _sent_to(project: Project, path: Path, slug: str) -> tuple[str, ...]:
    """The lists the issue went to; a NewsletterError in words if ``slug`` is not one."""
    lists = report_lists(project, path)
    if slug not in lists:
        raise NewsletterError(
            NOT_SENT if not lists else f"This issue was not sent to the list “{slug}”, only "
            f"to {', '.join(lists)}.",
            hint="Open the issue's report from the Reports page or the list of issues.")
    return lists


def _built(studio: StudioState, key: tuple[str, ...], build: Callable[[], T], *,
           fresh: bool) -> T:
    """What ``build()`` makes, or the one it made less than FRESH_SECONDS ago."""
    now = time.monotonic()
    if not fresh:
        with studio.lock:
            kept = studio.reports.get(key)
        if kept is not None and now - kept[0] < FRESH_SECONDS:
            cached: T = kept[1]
            return cached
    made = build()
    with studio.lock:
        if len(studio.reports) >= KEPT:
            studio.reports.clear()
        studio.reports[key] = (now, made)
    return made


async def _issue_report(request: Request, *, fresh: bool = False
                        ) -> tuple[str, str, IssueReport, str]:
    """The issue's name, the list, its report and the report's HTML (built in a thread)."""
    require(request, PERMISSION)
    studio = state(request)
    project = studio.project
    path = issue_path(project, request.path_params["name"])
    slug = request.path_params["list"]

    def build() -> tuple[IssueReport, str]:
        _sent_to(project, path, slug)
        report = issue_report(project, path, slug, weeks=WEEKS)
        return report, render_issue_report(report, project.config.name)

    report, html = await run_in_threadpool(_built, studio, ("issue", path.stem, slug), build,
                                           fresh=fresh)
    return path.stem, slug, report, html


async def _list_health(request: Request, *, fresh: bool = False) -> tuple[str, str]:
    """The list and its health report's HTML (built in a thread)."""
    require(request, PERMISSION)
    studio = state(request)
    project = studio.project
    slug = request.path_params["list"]

    def build() -> tuple[ListHealth, str]:
        health = list_health(project, slug, WEEKS)
        return health, render_list_health(health, project.config.name)

    _health, html = await run_in_threadpool(_built, studio, ("list", slug), build, fresh=fresh)
    return slug, html


def _framed(request: Request, html: str, filename: str) -> Response:
    """The self-contained report, to frame (links open outside the frame) or, with
    ?download=1, to save."""
    if request.query_params.get("download") == "1":
        return HTMLResponse(html, headers={
            "content-security-policy": REPORT_CSP,
            "content-disposition": f'attachment; filename="{filename}"'})
    return HTMLResponse(html.replace("<head>", '<head>\n<base target="_blank">', 1),
                        headers={"content-security-policy": REPORT_CSP})


# ---------------------------------------------------------------- pages


async def reports_page(request: Request) -> Response:
    """GET /reports: every sent issue with a report per list, and every list's health."""
    require(request, PERMISSION)
    studio = state(request)

    def load() -> tuple[list[IssueRow], list[Any]]:
        with studio.database.transaction() as session:
            lists = list_summaries(session)
        return [r for r in issue_rows(studio.project) if r.report_lists], lists

    rows, lists = await run_in_threadpool(load)
    return page(request, "reports.html", rows=rows, lists=lists)


async def choose_report(request: Request) -> Response:
    """GET /issues/NAME/report: not sent yet (in words), one list (its report), or a choice."""
    require(request, PERMISSION)
    studio = state(request)
    path = issue_path(studio.project, request.path_params["name"])
    lists = await run_in_threadpool(report_lists, studio.project, path)
    if len(lists) == 1:
        return redirect(request, f"/issues/{path.stem}/report/{lists[0]}")
    return page(request, "report.html", name=path.stem, lists=lists, report=None,
                not_sent=NOT_SENT)


async def report_page(request: Request) -> Response:
    """GET /issues/NAME/report/LIST: the report, framed, with its downloads."""
    require(request, PERMISSION)
    studio = state(request)
    path = issue_path(studio.project, request.path_params["name"])
    if not await run_in_threadpool(report_lists, studio.project, path):
        return page(request, "report.html", name=path.stem, lists=(), report=None,
                    not_sent=NOT_SENT)
    name, slug, report, _html = await _issue_report(request, fresh=True)
    return page(request, "report.html", name=name, slug=slug, report=report,
                f=report.figures, lists=(), not_sent=NOT_SENT)


async def report_html(request: Request) -> Response:
    """GET .../report.html: the self-contained report; ?download=1 saves it as a file."""
    name, slug, _report, html = await _issue_report(request)
    return _framed(request, html, _file_name("report", name, slug) + ".html")


async def report_csv(request: Request) -> Response:
    """GET .../stories.csv: story, title, url, readers, clicks (for spreadsheets)."""
    name, slug, report, _html = await _issue_report(request)
    # A byte-order mark, so that Excel reads the titles as UTF-8.
    return Response("\ufeff" + stories_csv(report.stories), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition":
                             f'attachment; filename="{_file_name("stories", name, slug)}.csv"'})


async def health_page(request: Request) -> Response:
    """GET /lists/LIST/health: growth, recent readers and never-openers, framed."""
    slug, _html = await _list_health(request, fresh=True)
    return page(request, "health.html", slug=slug, weeks=WEEKS)


async def health_html(request: Request) -> Response:
    """GET /lists/LIST/health.html: the list's health report; ?download=1 saves it."""
    slug, html = await _list_health(request)
    return _framed(request, html, _file_name("list", slug) + ".html")


ROUTES = [
    Route("/reports", reports_page),
    Route("/issues/{name}/report", choose_report),
    Route("/issues/{name}/report/{list}", report_page),
    Route("/issues/{name}/report/{list}/report.html", report_html),
    Route("/issues/{name}/report/{list}/stories.csv", report_csv),
    Route("/lists/{list}/health", health_page),
    Route("/lists/{list}/health.html", health_html),
]
