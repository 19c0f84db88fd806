"""Owners and leases: a batch in flight is never resent; several senders share a campaign;
a frozen batch sends exactly the people frozen into it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select, text

from newsletter.delivery import campaign as state
from newsletter.delivery.batchrecipients import RecipientReader, frozen_ids
from newsletter.delivery.leases import reserve
from newsletter.delivery.models import Batch, BatchState
from newsletter.delivery.overview import IN_FLIGHT, state_counts
from newsletter.delivery.planning import SendOptions, SendSettings, plan_send
from newsletter.delivery.send import run_send
from newsletter.project import Project
from newsletter.store import (
    Membership,
    Source,
    Subscriber,
    get_list,
    open_project_database,
    unsubscribe,
)
from tests.plugins.fake_sendgrid import SECRET, FakeSendGrid, own_identity, populate

ISSUE = "issues/2021-02-01.yaml"
SEND = [sys.executable, "-c", "from newsletter.cli import main; main()",
        "send", ISSUE, "--list", "weekly", "--transport", "sendgrid", "--yes"]


def _env(fake: FakeSendGrid, database_url: str | None = None, lease: float = 60.0,
         ) -> dict[str, str]:
    env = dict(os.environ)
    env.update(SENDGRID_API_HOST=fake.url, SENDGRID_API_KEY=fake.api_key,
               NEWSLETTER_SECRET=SECRET, COLUMNS="100",
               NEWSLETTER_SEND_LEASE_SECONDS=str(lease),
               NEWSLETTER_SEND_HEARTBEAT_SECONDS=str(lease / 4))
    env.pop("NEWSLETTER_DATABASE_URL", None)
    if database_url:
        env["NEWSLETTER_DATABASE_URL"] = database_url
    return env


def _wait(condition, what: str, limit: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


def _ambiguous_emails(project: Project) -> set[str]:
    database = open_project_database(project)
    try:
        with database.session() as session:
            left = session.scalars(
                select(Batch).where(Batch.state == BatchState.SUBMITTING.value)).all()
            ids = [i for b in left for i in frozen_ids(session, b.campaign_id, b.number)]
            return set(session.scalars(select(Subscriber.email).where(Subscriber.id.in_(ids))))
    finally:
        database.dispose()


def test_retry_ambiguous_leaves_batches_in_flight_alone(sample_project: Path,
                                                        fake_sendgrid: FakeSendGrid):
    """The reproduction of issue 11: a second send with --retry-ambiguous while the
    first one's requests were in flight sent 400 people the issue twice.

    The fake holds every request until the second command has finished, so the first
    send is certainly still in flight while the second looks at the campaign.
    """
    own_identity(sample_project)  # real sends refuse the sample's address
    project = Project(sample_project)
    populate(project, "weekly", 4_000)  # 4 batches: the first sender reserves them all
    fake_sendgrid.gate = threading.Event()
    env = _env(fake_sendgrid)
    first = subprocess.Popen(SEND, cwd=sample_project, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        _wait(lambda: fake_sendgrid.in_flight >= 1 or first.poll() is not None,
              "the first send has a request in flight")
        assert first.poll() is None, first.communicate()
        second = subprocess.run([*SEND, "--retry-ambiguous"], cwd=sample_project, env=env,
                                capture_output=True, text=True, timeout=120)
    finally:
        fake_sendgrid.gate.set()
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert "Traceback" not in second.stderr + second.stdout
    assert "another `newsletter send`" in second.stdout + second.stderr
    delivered = fake_sendgrid.delivered()
    assert set(delivered) == {f"user{i}@example.org" for i in range(4_000)}
    assert sum(n - 1 for n in delivered.values()) == 0, "someone got the issue twice"


def test_a_batch_is_ambiguous_only_once_its_lease_ran_out(send_project, fake_sendgrid):
    """A sender on another machine holds a batch: in flight, not ambiguous, not retried."""
    database = open_project_database(send_project)
    engine = database.engine
    with database.session() as session:
        list_id = get_list(session, "weekly").id
    campaign_id = state.create_campaign(engine, issue_name="2021-02-01", list_slug="weekly",
                                        transport="sendgrid", subject="s", batch_size=10)
    other = "elsewhere.example:4242:cafe"
    with engine.connect() as connection:
        [held] = reserve(connection, campaign_id, ["pending"], other, 4.0, 1)
    assert state.claim(engine, held.id, ["pending"], 10, other, 4.0)
    counts = state_counts(engine, campaign_id)
    assert counts[IN_FLIGHT].batches == 1 and counts["submitting"].batches == 0
    settings = SendSettings(batch_size=10, concurrency=2, timeout=2.0, max_retries=1)
    plan = plan_send(send_project, SendOptions(Path(ISSUE), list_slug="weekly",
                                               transport="sendgrid", retry_ambiguous=True),
                     settings)
    report = run_send(plan)
    assert not report.complete and report.elsewhere.batches == 1
    assert len(fake_sendgrid.accepted) == 2  # batches 2 and 3, never the one in flight
    _wait(lambda: state_counts(engine, campaign_id)["submitting"].batches == 1,
          "the other sender's lease ran out", limit=10)
    plan = plan_send(send_project, SendOptions(Path(ISSUE), list_slug="weekly",
                                               transport="sendgrid", retry_ambiguous=True),
                     settings)
    assert plan.ambiguous == 10
    assert run_send(plan).complete
    assert len(fake_sendgrid.accepted) == 3
    RecipientsCheck = RecipientReader(engine, list_id, campaign_id)  # noqa: N806
    assert RecipientsCheck.read(held.number)[0] == 10
    database.dispose()


def test_a_batch_sends_exactly_the_people_frozen_into_it(project_database_url, sample_project,
                                                         fake_sendgrid, monkeypatch):
    """Someone whose id falls inside a frozen batch's range but who joined after the
    freeze gets nothing; someone who unsubscribed after the freeze gets nothing."""
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    own_identity(sample_project)  # real sends refuse the sample's address
    project = Project(sample_project)
    populate(project, "weekly", 30)
    database = open_project_database(project)
    engine = database.engine
    with engine.begin() as connection:  # a gap in the ids: user5 left before the freeze
        person = connection.execute(select(Subscriber.__table__).where(
            Subscriber.email == "user5@example.org")).mappings().one()
        membership = connection.execute(select(Membership.__table__).where(
            Membership.subscriber_id == person["id"])).mappings().one()
        connection.execute(delete(Subscriber.__table__).where(
            Subscriber.id == person["id"]))
    state.create_campaign(engine, issue_name="2021-02-01", list_slug="weekly",
                          transport="sendgrid", subject="s", batch_size=10)
    with engine.begin() as connection:  # after the freeze: someone takes the gap's id
        connection.execute(insert(Subscriber.__table__).values(
            {**person, "email": "latecomer@example.org"}))
        connection.execute(insert(Membership.__table__).values(dict(membership)))
    with database.transaction() as session:
        unsubscribe(session, "user12@example.org", "weekly", source=Source.COMMAND)
    database.dispose()
    plan = plan_send(project, SendOptions(Path(ISSUE), list_slug="weekly",
                                          transport="sendgrid"),
                     SendSettings(batch_size=10, concurrency=2, timeout=2.0))
    report = run_send(plan)
    assert report.complete and report.skipped_unsubscribed == 1
    delivered = fake_sendgrid.delivered()
    assert set(delivered) == {f"user{i}@example.org" for i in range(30)} - {
        "user5@example.org", "user12@example.org"}
    assert set(delivered.values()) == {1}


def _accepted_by(url: str, pid: int) -> int:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(
                "SELECT count(*) FROM campaign_batches WHERE state = 'accepted' "
                "AND owner LIKE :owner"), {"owner": f"%:{pid}:%"}).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_three_senders_share_a_campaign_and_survive_one_killed(
        sample_project: Path, fake_sendgrid: FakeSendGrid, postgres_url: str,
        monkeypatch: pytest.MonkeyPatch):
    people = 50_000
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", postgres_url)
    own_identity(sample_project)  # real sends refuse the sample's address
    project = Project(sample_project)
    populate(project, "weekly", people)
    fake_sendgrid.delay = 0.3
    env = _env(fake_sendgrid, postgres_url, lease=2.0)
    senders = [subprocess.Popen(SEND, cwd=sample_project, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(3)]
    victim = senders[1]
    _wait(lambda: victim.poll() is not None or _accepted_by(postgres_url, victim.pid) >= 2,
          "the second sender has had 2 batches accepted")
    assert victim.poll() is None, "the send finished before the kill; slow the fake down"
    victim.send_signal(signal.SIGKILL)
    victim.wait(30)
    outputs = [s.communicate(timeout=120) for s in (senders[0], senders[2])]
    for out, err in outputs:
        assert "Traceback" not in out + err, err
    # The dead sender's lease runs out (at most 2 s); then the operator retries.
    ambiguous = _ambiguous_emails(project)
    again = subprocess.run([*SEND, "--retry-ambiguous"], cwd=sample_project, env=env,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 or "already sent" in again.stderr, again.stderr
    delivered = fake_sendgrid.delivered()
    everyone = {f"user{i}@example.org" for i in range(people)}
    assert set(delivered) == everyone, "someone never got the issue"
    twice = {email for email, n in delivered.items() if n > 1}
    assert twice <= ambiguous, "someone outside the ambiguous batches got it twice"
    assert len(ambiguous) <= 4 * 1000  # at most the victim's requests in flight
