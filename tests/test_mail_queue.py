"""No silent loss of transactional email: the queue, its retries, and the shared chores."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.project import Project
from newsletter.retry import RetryPolicy
from newsletter.store import Database, create_list, find_list, open_project_database, utcnow
from newsletter.store.chores import take_turn
from newsletter.store.mailqueue import claim_due, counts, enqueue
from newsletter.store.models import WebhookEvent
from newsletter.web.app import create_app
from newsletter.web.context import Limits
from tests.plugins.fake_sendgrid import DROP, FakeSendGrid, Reply
from tests.plugins.waiting import wait_until
from tests.servers import serve_asgi, wait_idle
from tests.test_web import SECRET, link_path

FAST = RetryPolicy(base=0.01, cap=0.02, rng=random.Random(7))


def _use_sendgrid(root: Path) -> None:
    config = root / "newsletter.toml"
    config.write_text(config.read_text().replace('transport = "outbox"',
                                                 'transport = "sendgrid"'))


def _lists(db: Database) -> None:
    with db.transaction() as session:
        if find_list(session, "weekly") is None:
            create_list(session, "weekly", "Weekly Brief", double_opt_in=True)


@pytest.fixture
def sendgrid_project(sample_project: Path, monkeypatch: pytest.MonkeyPatch,
                     fake_sendgrid: FakeSendGrid) -> Iterator[tuple[Project, Database]]:
    _use_sendgrid(sample_project)
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    project = Project(sample_project)
    db = open_project_database(project)
    _lists(db)
    yield project, db
    db.dispose()


def _sign_up(client: httpx.Client, address: str) -> None:
    answer = client.post("/subscribe/weekly", json={"email": address})
    assert answer.status_code == 200


def test_a_confirmation_email_waits_in_the_queue_until_sendgrid_is_back(
    sendgrid_project: tuple[Project, Database], fake_sendgrid: FakeSendGrid
) -> None:
    project, db = sendgrid_project
    app = create_app(project, database=db, verifier=None)
    queue = app.state.web.send
    queue.policy = FAST
    fake_sendgrid.script(Reply(503), DROP)  # down, then an answer that never comes
    with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        _sign_up(client, "ann@example.org")
        wait_idle(url)
        assert fake_sendgrid.delivered()["ann@example.org"] == 0
        health = client.get("/healthz").json()
        assert health["mail_queue"] == {"waiting": 1, "failed": 0} and health["mail"] == "ok"
        status = CliRunner().invoke(main, ["--project", str(project.root), "status"])
        assert "1 waiting" in status.output and "0 failed" in status.output

        assert queue.send_due() == 0  # the dropped connection: still waiting
        wait_until(lambda: queue.send_due() == 1, 10, "the queued email never went out")
        assert fake_sendgrid.delivered()["ann@example.org"] == 1
        with db.session() as session:
            assert counts(session) == {"waiting": 0, "failed": 0}
        sent = next(a for a in fake_sendgrid.accepted if "ann@example.org" in a.emails)
        text = sent.body["content"][0]["value"]
        assert client.post(link_path(text, "confirm")).status_code == 200


def test_an_email_sendgrid_rejects_is_marked_failed_and_shown(
    sendgrid_project: tuple[Project, Database], fake_sendgrid: FakeSendGrid
) -> None:
    project, db = sendgrid_project
    app = create_app(project, database=db, verifier=None)
    fake_sendgrid.script(Reply(400, errors=(("personalizations", "Does not work"),)))
    with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        _sign_up(client, "bob@example.org")
        wait_idle(url)
        assert client.get("/healthz").json()["mail_queue"] == {"waiting": 0, "failed": 1}
    status = CliRunner().invoke(main, ["--project", str(project.root), "status"])
    assert "0 waiting" in status.output and "1 failed" in status.output
    assert "bob@example.org" not in status.output


def test_the_running_service_retries_by_itself_and_runs_housekeeping_periodically(
    sendgrid_project: tuple[Project, Database], fake_sendgrid: FakeSendGrid
) -> None:
    project, db = sendgrid_project
    app = create_app(project, database=db, verifier=None,
                     limits=Limits(mail_poll=0.05, housekeeping=0.2))
    app.state.web.send.policy = FAST
    fake_sendgrid.script(Reply(500))
    with serve_asgi(app, lifespan="on") as url, httpx.Client(base_url=url) as client:
        _sign_up(client, "cat@example.org")
        wait_until(lambda: fake_sendgrid.delivered()["cat@example.org"] == 1, 10,
                   "the background task never sent the queued email")
        # An event id older than SendGrid's retry window, written while the service runs.
        with db.transaction() as session:
            session.add(WebhookEvent(sg_event_id="old-one",
                                     received_at=utcnow() - timedelta(days=31)))

        def forgotten() -> bool:
            with db.session() as session:
                return session.get(WebhookEvent, "old-one") is None

        wait_until(forgotten, 10, "old event ids were not forgotten while the service ran")


def test_each_due_message_is_claimed_by_one_worker_only(database: Database) -> None:
    with database.transaction() as session:
        ids = [enqueue(session, kind="confirm", to=f"p{n}@example.org", subject="s", html="h",
                       text="t", claim=False) for n in range(5)]
        enqueue(session, kind="confirm", to="busy@example.org", subject="s", html="h",
                text="t", claim=True)  # being sent right now by someone
    first, second = database.session(), database.session()
    try:
        mine = claim_due(first, limit=3)
        first.commit()
        theirs = claim_due(second, limit=10)
        second.commit()
    finally:
        first.close()
        second.close()
    assert sorted(m.id for m in mine + theirs) == ids


def test_a_chore_is_taken_by_one_worker_per_period(database: Database) -> None:
    now = utcnow()
    with database.transaction() as session:
        assert take_turn(session, "housekeeping", "worker-a", period=3600, now=now)
    with database.transaction() as session:
        assert not take_turn(session, "housekeeping", "worker-b", period=3600, now=now)
        assert not take_turn(session, "housekeeping", "worker-a",
                             period=3600, now=now + timedelta(minutes=59))
    with database.transaction() as session:
        assert take_turn(session, "housekeeping", "worker-b", period=3600,
                         now=now + timedelta(minutes=61))
        assert take_turn(session, "another-chore", "worker-b", period=3600, now=now)


def test_status_says_nothing_about_an_empty_queue(sample_project: Path) -> None:
    output = CliRunner().invoke(main, ["status"]).output
    assert not re.search(r"waiting to be sent", output)
