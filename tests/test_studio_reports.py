"""Reports in the studio over real HTTP: an issue sent through the outbox, a known mix of
webhook events stored, and the page, its downloads and the plain words when there is
nothing yet."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from newsletter.cli import main
from newsletter.delivery.models import Campaign
from newsletter.issue import load_issue
from newsletter.project import Project
from newsletter.store import open_project_database
from newsletter.store.events import apply_batch
from newsletter.studio import create_app
from newsletter.studio.reports import NOT_SENT, REPORT_CSP, _file_name
from newsletter.studio.security import PAGE_CSP
from tests.plugins.fake_sendgrid import populate
from tests.servers import serve_asgi
from tests.test_studio_hosted import (  # noqa: F401  (the fixtures)
    PEOPLE,
    as_user,
    database,
    studio_app,
    studio_url,
)

ISSUE = "2021-02-01"
REPORT = f"/issues/{ISSUE}/report/weekly"


def send(project: Project) -> int:
    """Send the sample issue to 'weekly' (25 people) through the outbox; its campaign id."""
    result = CliRunner().invoke(main, ["-C", str(project.root), "send", f"issues/{ISSUE}.yaml",
                                       "--list", "weekly", "--yes"])
    assert result.exit_code == 0, result.output
    return campaign_id(project)


def campaign_id(project: Project) -> int:
    db = open_project_database(project)
    try:
        with db.session() as session:
            found = session.scalar(select(Campaign.id).where(Campaign.issue_name == ISSUE))
        assert found is not None
        return found
    finally:
        db.dispose()


def known_mix(campaign: int, urls: list[str]) -> list[dict[str, Any]]:
    """24 delivered and 1 bounce; 8 people open (twice each), 4 machine opens; story 1 is
    clicked 4 times by 3 people, story 2 once (with utm_*), so 4 people clicked."""
    start = int(dt.datetime.now(dt.UTC).timestamp())
    events: list[dict[str, Any]] = []

    def add(kind: str, user: int, minute: int, **fields: Any) -> None:
        events.append({"event": kind, "email": f"user{user}@example.org",
                       "nl_campaign": str(campaign), "nl_list": "weekly",
                       "sg_event_id": f"e{len(events)}", "timestamp": start + 60 * minute,
                       **fields})

    for user in range(24):
        add("delivered", user, 1)
    add("bounce", 24, 1, type="bounce", status="5.1.1")
    for user in range(8):
        add("open", user, 10 + user, sg_machine_open=False)
        add("open", user, 200 + user, sg_machine_open=False)
    for user in range(8, 12):
        add("open", user, 2, sg_machine_open=True)
    for user, minute in ((0, 20), (0, 21), (1, 22), (2, 23)):
        add("click", user, minute, url=urls[0])
    add("click", 3, 30, url=urls[1] + "?utm_source=newsletter")
    return events


def store_events(project: Project, events: list[dict[str, Any]]) -> None:
    db = open_project_database(project)
    try:
        with db.transaction() as session:
            apply_batch(session, events)
    finally:
        db.dispose()


@pytest.fixture
def client(send_project: Project) -> Iterator[httpx.Client]:
    with serve_asgi(create_app(send_project.root)) as url, \
            httpx.Client(base_url=url, timeout=60, follow_redirects=True) as http:
        yield http


@pytest.fixture
def with_events(send_project: Project, client: httpx.Client) -> httpx.Client:
    urls = [item.url for item in load_issue(send_project.root / "issues" / f"{ISSUE}.yaml")
            .items]
    store_events(send_project, known_mix(send(send_project), urls))
    return client


def framed(client: httpx.Client, page: httpx.Response) -> httpx.Response:
    """The report the page frames, fetched as the browser does."""
    source = re.search(r'<iframe class="report"[^>]* src="([^"]+)"', page.text)
    assert source, page.text
    return client.get(source[1])


def tile(html: str, label: str) -> str:
    found = re.search(r'<span class="value">([^<]+)</span><span class="label">'
                      + re.escape(label), html)
    assert found, label
    return found[1]


def test_the_report_shows_unique_opens_and_clicks_of_the_known_mix(
        with_events: httpx.Client) -> None:
    client = with_events
    issues = client.get("/").text
    link = re.search(r'href="([^"]+)">Report<span class="visually-hidden"> on ' + ISSUE, issues)
    assert link and link[1] == REPORT
    page = client.get(link[1])
    assert page.status_code == 200
    assert "24 delivered, 8 opened, 4 clicked (people)" in page.text
    assert page.headers["content-security-policy"] == PAGE_CSP
    assert "Download the report (HTML)" in page.text
    assert "Download the stories as CSV" in page.text
    report = framed(client, page)
    assert report.status_code == 200
    assert report.headers["content-security-policy"] == REPORT_CSP
    assert "script-src" not in REPORT_CSP and "<script" not in report.text.lower()
    html = report.text
    assert (tile(html, "Delivered"), tile(html, "Opened (people)"),
            tile(html, "Machine opens"), tile(html, "Clicked (people)")) == ("24", "8", "4", "4")
    assert tile(html, "Click rate") == "16.7%" and tile(html, "Click-to-open rate") == "50.0%"
    assert 'aria-labelledby="chart-stories-title chart-stories-desc"' in html
    assert "No webhook events arrived" not in html


def test_the_downloads_are_the_report_and_the_stories(with_events: httpx.Client) -> None:
    client = with_events
    client.get(REPORT)
    saved = client.get(f"{REPORT}/report.html", params={"download": "1"})
    assert saved.headers["content-disposition"] == \
        f'attachment; filename="report-{ISSUE}-weekly.html"'
    assert "<base" not in saved.text and "Clicks per story" in saved.text
    stories = client.get(f"{REPORT}/stories.csv")
    assert stories.headers["content-type"].startswith("text/csv")
    assert stories.headers["content-disposition"] == \
        f'attachment; filename="stories-{ISSUE}-weekly.csv"'
    rows = list(csv.DictReader(io.StringIO(stories.content.decode("utf-8-sig"))))
    by_story = {row["story"]: (row["readers"], row["clicks"]) for row in rows}
    assert by_story["1"] == ("3", "4") and by_story["2"] == ("1", "1")
    assert rows[0]["story"] == "1" and rows[0]["url"].startswith("http")
    assert len(rows) >= 3 and all(row["title"] for row in rows)


def test_an_unsent_issue_says_so_in_plain_words(client: httpx.Client) -> None:
    assert "Report<span" not in client.get("/").text
    editor = client.get(f"/issues/{ISSUE}").text
    assert f'href="/issues/{ISSUE}/report">Report</a>' in editor
    for path in (f"/issues/{ISSUE}/report", REPORT):
        page = client.get(path)
        assert page.status_code == 200 and NOT_SENT in page.text, path
    for path in (f"{REPORT}/report.html", f"{REPORT}/stories.csv"):
        answer = client.get(path)
        assert answer.status_code == 400 and NOT_SENT in answer.text, path
    reports = client.get("/reports").text
    assert "No issue has been sent yet" in reports


def test_without_events_the_report_explains_where_its_figures_come_from(
        send_project: Project, client: httpx.Client) -> None:
    send(send_project)
    page = client.get(REPORT)
    assert page.status_code == 200
    assert "No webhook events arrived for this issue" in framed(client, page).text


def test_mistakes_in_the_address_are_pages_in_words(with_events: httpx.Client) -> None:
    wrong_list = with_events.get(f"/issues/{ISSUE}/report/monthly")
    assert wrong_list.status_code == 400
    assert "This issue was not sent to the list “monthly”, only to weekly." in wrong_list.text
    no_list = with_events.get("/lists/monthly/health")
    assert no_list.status_code == 400 and "There is no list &#39;monthly&#39;." in no_list.text
    no_issue = with_events.get("/issues/1999-01-01/report")
    assert no_issue.status_code == 404 and "There is no issue called" in no_issue.text


def test_list_health_from_the_reports_page(with_events: httpx.Client) -> None:
    client = with_events
    reports = client.get("/reports").text
    assert 'href="/reports">Reports</a>' in reports  # in the navigation
    assert f'href="{REPORT}"' in reports
    link = re.search(r'href="([^"]+)">List health: “weekly”', reports)
    assert link and link[1] == "/lists/weekly/health"
    page = client.get(link[1])
    assert page.status_code == 200 and page.headers["content-security-policy"] == PAGE_CSP
    html = framed(client, page).text
    assert tile(html, "Members now") == "24"  # the hard bounce left the list
    assert tile(html, "Opened or clicked any of the last 1 issues") == "33.3%"
    assert tile(html, "Opened none of them") == "16"
    assert 'aria-labelledby="chart-growth-title chart-growth-desc"' in html
    assert "/lists/weekly/health" in client.get("/subscribers").text


def test_reports_are_cached_briefly_then_built_again(send_project: Project,
                                                    with_events: httpx.Client) -> None:
    client = with_events
    first = framed(client, client.get(REPORT)).text
    store_events(send_project, [{"event": "open", "email": "user20@example.org",
                                 "nl_campaign": str(campaign_id(send_project)),
                                 "sg_event_id": "late",
                                 "timestamp": int(dt.datetime.now(dt.UTC).timestamp())}])
    assert framed(client, client.get(REPORT)).text != first  # the page builds it afresh


def test_download_names_keep_to_letters_digits_dots_and_dashes() -> None:
    assert _file_name("report", "2021-02-01", 'a"b/c d') == "report-2021-02-01-a_b_c_d"


def test_every_hosted_role_may_read_the_reports(as_user) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    for email in PEOPLE:  # editor, sender, admin: all may open the issues
        person = as_user(email)
        reports = person.get("/reports")
        assert reports.status_code == 200, email
        assert 'href="/reports">Reports</a>' in reports.text
        assert NOT_SENT in person.get(f"/issues/{ISSUE}/report").text


def test_an_issue_sent_to_two_lists_has_a_report_for_each(send_project: Project,
                                                          client: httpx.Client) -> None:
    send(send_project)
    populate(send_project, "monthly", 3, start=100)
    result = CliRunner().invoke(main, ["-C", str(send_project.root), "send",
                                       f"issues/{ISSUE}.yaml", "--list", "monthly", "--yes"])
    assert result.exit_code == 0, result.output
    issues = client.get("/").text
    for slug in ("monthly", "weekly"):
        assert re.search(rf'href="/issues/{ISSUE}/report/{slug}">Report<span class="visually-'
                         rf'hidden"> on {ISSUE}</span> for “{slug}”</a>', issues), slug
    choice = client.get(f"/issues/{ISSUE}/report")
    assert "This issue went to several lists" in choice.text
    assert re.findall(r'href="(/issues/[^"]+/report/[^"]+)"', choice.text) == [
        f"/issues/{ISSUE}/report/monthly", f"/issues/{ISSUE}/report/weekly"]
    monthly = client.get(f"/issues/{ISSUE}/report/monthly")
    assert monthly.status_code == 200
    assert f"Report: issue {ISSUE} to “monthly”" in monthly.text
