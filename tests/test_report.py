"""`newsletter report`: a simulated send of 2,000 readers, its events posted through the
signed webhook, and the report's numbers checked against the known mix."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from newsletter.cli import main
from newsletter.delivery.models import Campaign
from newsletter.issue import load_issue
from newsletter.project import Project
from newsletter.reports import issue_report, list_health
from newsletter.reports.export import safe_cell, stories_csv
from newsletter.reports.figures import Story
from newsletter.store import add_subscriber, get_or_create_list, open_project_database
from newsletter.store.engagement import campaign_links, forget_reader_events, hourly
from newsletter.store.events import apply_batch
from newsletter.store.importer import import_csv
from newsletter.store.models import CampaignEventCount, ReaderEvent
from newsletter.web.webhook import WebhookVerifier
from tests.test_web import Service, start_service
from tests.test_web_webhook import Signer, post

READERS = 2000
ISSUE = "2021-02-01"


@dataclass
class Mix:
    """What the simulation sent, to check the report against."""

    campaign_id: int
    sent: dt.datetime
    hard: int = 0
    blocked: int = 0
    delivered: int = 0
    openers: set[str] = field(default_factory=set)
    open_events: int = 0
    machine: set[str] = field(default_factory=set)
    clickers: set[str] = field(default_factory=set)
    story_clicks: Counter[int] = field(default_factory=Counter)
    story_clickers: dict[int, set[str]] = field(default_factory=dict)
    unsubscribed: int = 0
    spam: int = 0


def _campaign(service: Service, issue: str, created: dt.datetime, recipients: int) -> int:
    with service.db.transaction() as session:
        campaign = Campaign(issue_name=issue, list_slug="weekly", transport="sendgrid",
                            subject=f"Issue {issue}", status="sent",
                            recipient_count=recipients, created_at=created)
        session.add(campaign)
        session.flush()
        return campaign.id


def simulate(service: Service, signer: Signer, seed: int = 17) -> Mix:
    """2,000 readers on 'weekly', the previous 2 issues, and this issue's events."""
    root = service.project.root
    people = root / "people.csv"
    people.write_text("email,name\n" + "".join(
        f"reader{i}@example.org,Reader {i}\n" for i in range(READERS)), encoding="utf-8")
    import_csv(service.db.engine, people, "weekly")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for weeks_ago, delivered in ((3, 1900), (2, 1950)):
        old = _campaign(service, f"2021-01-{10 + weeks_ago}", now - dt.timedelta(weeks=weeks_ago),
                        READERS)
        with service.db.transaction() as session:
            session.add(CampaignEventCount(campaign_id=old, event="delivered", count=delivered))
    sent = now - dt.timedelta(days=4)
    mix = Mix(_campaign(service, ISSUE, sent, READERS), sent)
    urls = [item.url for item in load_issue(root / "issues" / f"{ISSUE}.yaml").items]
    rng = random.Random(seed)
    events: list[dict] = []

    def add(kind: str, address: str, hour: float = 0, **fields: object) -> None:
        events.append({"event": kind, "email": address, "nl_campaign": str(mix.campaign_id),
                       "nl_list": "weekly", "sg_event_id": uuid.UUID(int=rng.getrandbits(128)).hex,
                       "timestamp": int(sent.timestamp() + hour * 3600), **fields})

    weights = [30, 18, 12, 9, 6, 4, 3, 2][:len(urls)]
    for i in range(READERS):
        address = f"reader{i}@example.org"
        add("processed", address)
        roll = rng.random()
        if roll < 0.01:
            add("bounce", address, type="bounce", status="5.1.1")
            mix.hard += 1
            continue
        if roll < 0.015:
            add("bounce", address, type="blocked", status="5.7.1")
            mix.blocked += 1
            continue
        add("delivered", address, 0.1)
        mix.delivered += 1
        if rng.random() < 0.35:  # Apple Mail Privacy Protection fetches the images
            for _ in range(rng.randint(1, 2)):
                add("open", address, rng.uniform(0, 2), sg_machine_open=True)
            mix.machine.add(address)
        if rng.random() < 0.3:
            for _ in range(rng.randint(1, 3)):
                add("open", address, rng.uniform(0, 70.9), sg_machine_open=False)
                mix.open_events += 1
            mix.openers.add(address)
            if rng.random() < 0.4:
                for story in set(rng.choices(range(1, len(urls) + 1), weights, k=2)):
                    url = urls[story - 1] + ("?utm_source=newsletter" if rng.random() < 0.5
                                             else "")
                    for _ in range(rng.randint(1, 2)):
                        add("click", address, rng.uniform(0, 70.9), url=url)
                        mix.story_clicks[story] += 1
                    mix.story_clickers.setdefault(story, set()).add(address)
                    mix.clickers.add(address)
            if rng.random() < 0.005:
                add("unsubscribe", address, 5)
                mix.unsubscribed += 1
        elif rng.random() < 0.002:
            add("spamreport", address, 3)
            mix.spam += 1
    rng.shuffle(events)
    for start in range(0, len(events), 1000):
        answer = post(service, signer, events[start:start + 1000])
        assert answer.status_code == 200, answer.text
    return mix


@pytest.fixture
def simulated(sample_project: Path, monkeypatch: pytest.MonkeyPatch
              ) -> Iterator[tuple[Service, Mix]]:
    signer = Signer()
    for service in start_service(sample_project, monkeypatch,
                                 verifier=WebhookVerifier(signer.public_b64)):
        yield service, simulate(service, signer)


def test_the_report_matches_the_simulated_send(simulated: tuple[Service, Mix]) -> None:
    service, mix = simulated
    report = issue_report(service.project, service.project.root / "issues" / f"{ISSUE}.yaml",
                          "weekly")
    f = report.figures
    assert f.source == "webhook" and report.notes == []
    assert (f.delivered, f.bounced_hard, f.blocked) == (mix.delivered, mix.hard, mix.blocked)
    assert f.opens == len(mix.openers) and f.opens_total == mix.open_events
    assert f.machine_opens == len(mix.machine)
    assert f.clicks == len(mix.clickers) > 50
    assert f.click_rate == round(len(mix.clickers) / mix.delivered, 4)
    assert f.click_to_open == round(len(mix.clickers) / len(mix.openers), 4)
    assert f.unsubscribes == mix.unsubscribed
    assert sum(f.unsubscribe_reasons.values()) == mix.unsubscribed
    assert f.spam_reports == mix.spam
    stories = {s.index: s for s in report.stories}
    for index, clicks in mix.story_clicks.items():  # links with utm_* count for their story
        assert (stories[index].clicks, stories[index].clickers) == (
            clicks, len(mix.story_clickers[index]))
    clicked = [s for s in report.stories if s.clicks]
    assert clicked == sorted(clicked, key=lambda s: -s.clicks) and clicked[0].index == 1
    assert 0 not in stories  # every click belonged to a story
    assert sum(report.hours["open"]) == mix.open_events
    assert sum(report.hours["click"]) == sum(mix.story_clicks.values())
    assert [p.issue for p in report.previous] == ["2021-01-13", "2021-01-12"]  # oldest first
    assert [p.delivered for p in report.previous] == [1900, 1950]
    this_week = report.weeks[-1]
    assert len(report.weeks) == 26
    assert sum(w.joined for w in report.weeks) == READERS == this_week.joined
    assert sum(w.bounced for w in report.weeks) == mix.hard + mix.spam


def test_list_health_counts_readers_and_never_openers(simulated: tuple[Service, Mix]) -> None:
    service, mix = simulated
    health = list_health(service.project, "weekly", weeks=8)
    members = READERS - mix.hard - mix.spam - mix.unsubscribed
    engaged = len(mix.openers) - mix.unsubscribed  # who left is no longer a member
    assert (health.members, health.readers) == (members, engaged)
    assert health.never_opened == members - engaged
    assert health.issues == ["2021-01-13", "2021-01-12", ISSUE]
    assert len(health.weeks) == 8


def test_json_and_csv_from_the_command_line(simulated: tuple[Service, Mix], tmp_path: Path
                                            ) -> None:
    service, mix = simulated
    root = service.project.root
    out = tmp_path / "stories.csv"
    result = CliRunner().invoke(main, ["-C", str(root), "report", f"issues/{ISSUE}.yaml",
                                       "--list", "weekly", "--json", "--csv", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["campaign"]["opens"] == len(mix.openers)
    assert len(data["hours"]["open"]) == 72 and len(data["growth"]) == 26
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert {int(r["story"]) for r in rows if r["story"]} == set(range(1, len(rows) + 1))
    table = CliRunner().invoke(main, ["-C", str(root), "report", f"issues/{ISSUE}.yaml"])
    assert table.exit_code == 0 and "Click-to-open rate" in table.output
    health = CliRunner().invoke(main, ["-C", str(root), "report", "--list", "weekly"])
    assert health.exit_code == 0 and "re-engagement" in health.output


def test_forgetting_a_reader_deletes_their_rows(simulated: tuple[Service, Mix]) -> None:
    service, mix = simulated
    with service.db.transaction() as session:
        someone = session.scalar(select(ReaderEvent.subscriber_id).limit(1))
        assert forget_reader_events(session, someone) >= 1
        left = session.scalar(select(func.count()).select_from(ReaderEvent)
                              .where(ReaderEvent.subscriber_id == someone))
    assert left == 0


def test_privacy_aggregate_keeps_counts_only(service_db) -> None:  # type: ignore[no-untyped-def]
    db = service_db
    events = [{"event": "open", "email": "a@example.org", "sg_event_id": f"e{i}",
               "timestamp": 3600 * 100 + i, "nl_campaign": "5"} for i in range(3)]
    events.append({"event": "click", "email": "a@example.org", "sg_event_id": "c1",
                   "timestamp": 3600 * 101, "nl_campaign": "5", "url": "https://x.org/a"})
    with db.transaction() as session:
        apply_batch(session, events, privacy="aggregate")
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(ReaderEvent)) == 0
        assert hourly(session, 5)["open"] == {100: 3}
        assert [(link.url, link.clicks, link.clickers) for link in campaign_links(session, 5)] \
            == [("https://x.org/a", 1, 0)]


@pytest.fixture
def service_db(sample_project: Path) -> Iterator[object]:
    db = open_project_database(Project(sample_project))
    with db.transaction() as session:
        get_or_create_list(session, "weekly", "Weekly")
        add_subscriber(session, "a@example.org", "weekly")
    yield db
    db.dispose()


@pytest.mark.parametrize("text", ["=HYPERLINK(1)", "+1", "-2", "@x", "\tx", "\rx"])
def test_csv_cells_never_run_as_formulas(text: str) -> None:
    assert safe_cell(text) == "'" + text
    row = next(csv.reader(io.StringIO(stories_csv([Story(1, text, "https://x.org/", 3, 2)])
                                      .split("\r\n", 1)[1])))
    assert row[1] == "'" + text
    assert safe_cell("Plain title") == "Plain title"
