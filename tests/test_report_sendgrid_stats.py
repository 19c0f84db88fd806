"""Without the webhook: the report reads SendGrid's category statistics from the fake."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import httpx
import pytest

from newsletter.delivery.models import Campaign
from newsletter.project import Project
from newsletter.reports import issue_report
from newsletter.store import open_project_database
from tests.plugins.fake_sendgrid import FakeSendGrid
from tests.plugins.sendgrid_spec import (
    BUNDLED_SPEC_DIR,
    CATEGORY_STATS_FILE,
    SHARED_SPEC_DIR,
    category_stats_response_validator,
)

ISSUE = "2021-02-01"


@pytest.fixture
def sent(sample_project: Path) -> Project:
    project = Project(sample_project)
    db = open_project_database(project)
    with db.transaction() as session:
        session.add(Campaign(issue_name=ISSUE, list_slug="weekly", transport="sendgrid",
                             status="sent", recipient_count=500,
                             created_at=dt.datetime(2021, 2, 1, 9, tzinfo=dt.UTC)))
    db.dispose()
    return project


def test_sendgrid_totals_when_no_events_arrived(sent: Project,
                                                fake_sendgrid: FakeSendGrid) -> None:
    fake_sendgrid.category_stats[f"issue:{ISSUE}"] = {
        "2021-02-01": {"delivered": 480, "opens": 300, "unique_opens": 200, "clicks": 90,
                       "unique_clicks": 60, "bounces": 12, "blocks": 3, "unsubscribes": 2},
        "2021-02-02": {"opens": 50, "unique_opens": 40, "clicks": 10, "unique_clicks": 8},
        "2021-03-01": {"opens": 999},  # outside the week after sending
    }
    report = issue_report(sent, sent.root / "issues" / f"{ISSUE}.yaml",
                          now=dt.datetime(2021, 3, 5, tzinfo=dt.UTC))
    f = report.figures
    assert f.source == "sendgrid"
    assert (f.delivered, f.opens, f.opens_total, f.clicks, f.clicks_total) == (
        480, 240, 350, 68, 100)
    assert (f.bounced_hard, f.blocked, f.unsubscribes) == (12, 3, 2)
    assert "totals from SendGrid" in report.notes[0] and "not unique readers" in report.notes[0]
    assert fake_sendgrid.rejected == []
    (name, query), = fake_sendgrid.gets
    assert name == "categories/stats"
    assert query == {"start_date": "2021-02-01", "end_date": "2021-02-08",
                     "categories": f"issue:{ISSUE}", "aggregated_by": "day"}


def test_the_fake_refuses_what_sendgrid_refuses(fake_sendgrid: FakeSendGrid) -> None:
    answer = httpx.get(f"{fake_sendgrid.url}/v3/categories/stats",
                       params={"start_date": "1 Feb", "aggregated_by": "hour"},
                       headers={"Authorization": f"Bearer {fake_sendgrid.api_key}"})
    assert answer.status_code == 400
    fields = {e["field"] for e in answer.json()["errors"]}
    assert fields == {"start_date", "categories", "aggregated_by"}


def test_what_the_fake_serves_matches_the_description(fake_sendgrid: FakeSendGrid) -> None:
    fake_sendgrid.category_stats["a"] = {"2021-02-01": {"delivered": 1}}
    answer = httpx.get(f"{fake_sendgrid.url}/v3/categories/stats",
                       params=[("start_date", "2021-01-01"), ("categories", "a"),
                               ("categories", "b")],
                       headers={"Authorization": f"Bearer {fake_sendgrid.api_key}"})
    assert answer.status_code == 200
    assert list(category_stats_response_validator().iter_errors(answer.json())) == []
    assert [s["name"] for s in answer.json()[0]["stats"]] == ["a", "b"]


def test_no_key_says_what_to_do(sent: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    report = issue_report(sent, sent.root / "issues" / f"{ISSUE}.yaml")
    assert report.figures.source == "none" and "SENDGRID_API_KEY" in report.notes[0]


def test_the_excerpt_is_upstream_s_operation() -> None:
    upstream = SHARED_SPEC_DIR / "tsg_stats_v3.json"
    if not upstream.is_file():
        pytest.skip(f"{upstream} is missing: nothing to compare the excerpt with")
    ours = json.loads((BUNDLED_SPEC_DIR / CATEGORY_STATS_FILE).read_text(encoding="utf-8"))
    theirs = json.loads(upstream.read_text(encoding="utf-8"))
    assert ours["components"]["schemas"]["CategoryStats"] == \
        theirs["components"]["schemas"]["CategoryStats"]
    ours_get = ours["paths"]["/v3/categories/stats"]["get"]
    theirs_get = theirs["paths"]["/v3/categories/stats"]["get"]
    assert ours_get["responses"] == theirs_get["responses"]
    names = [p.get("name", p.get("$ref")) for p in ours_get["parameters"]]
    assert names[:4] + names[6:] == [p.get("name", p.get("$ref"))
                                     for p in theirs_get["parameters"]]
