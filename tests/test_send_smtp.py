"""Sending through the smtp transport to a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.delivery import personal
from newsletter.delivery.models import Batch, BatchDelivery, BatchState, DeliveryState
from newsletter.delivery.planning import SendOptions, SendSettings, plan_send
from newsletter.delivery.refusals import REASON
from newsletter.delivery.send import run_send
from newsletter.delivery.smtp import PASSWORD_ENV, SmtpTransport, TokenBucket
from newsletter.delivery.status import campaigns_status
from newsletter.errors import NewsletterError
from newsletter.project import Project
from newsletter.store import HistoryEntry, Subscriber, open_project_database
from newsletter.tokens import read_unsubscribe_token
from tests.plugins.fake_sendgrid import (
    SECRET,
    own_identity,
    populate,
    store_as_an_older_version_did,
)
from tests.plugins.smtp_server import PASSWORD, SmtpServer, running

ISSUE = Path("issues/2021-02-01.yaml")
FAST = SendSettings(batch_size=10, concurrency=2, timeout=5.0, max_retries=3,
                    backoff_base=0.01, backoff_cap=0.05)


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[SmtpServer]:
    """The test SMTP server (tests/plugins/smtp_server.py)."""
    yield from running(tmp_path / "smtp-tls")


@pytest.fixture
def smtp_project(sample_project: Path, smtp_server: SmtpServer,
                 monkeypatch: pytest.MonkeyPatch) -> Project:
    """The sample project sending through the test server, with a list 'weekly' of 25."""
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    own_identity(sample_project)  # real transports refuse the sample newsletter's identity
    with (sample_project / "newsletter.toml").open("a", encoding="utf-8") as handle:
        handle.write(smtp_server.smtp_table())
    project = Project(sample_project)
    populate(project, "weekly", 25)
    return project


def send(project: Project, settings: SendSettings = FAST, **options):
    options.setdefault("list_slug", "weekly")
    options.setdefault("transport", "smtp")
    return run_send(plan_send(project, SendOptions(ISSUE, **options), settings))


def everyone(n: int = 25) -> set[str]:
    return {f"user{i}@example.org" for i in range(n)}


def rows(project: Project, model):
    database = open_project_database(project)
    try:
        with database.session() as session:
            return list(session.scalars(select(model)))
    finally:
        database.dispose()


def deliveries(project: Project) -> dict[str, str]:
    """{email: delivery state} of every recorded message."""
    database = open_project_database(project)
    try:
        with database.session() as session:
            found = session.execute(
                select(Subscriber.email, BatchDelivery.state)
                .join(Subscriber, Subscriber.id == BatchDelivery.subscriber_id)).all()
            return {e: s for e, s in found}
    finally:
        database.dispose()


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_every_recipient_gets_one_complete_personal_message(smtp_project, smtp_server,
                                                            monkeypatch):
    def slow_way(*args, **kwargs):
        raise AssertionError("built with the email package, not delivery/fastmime.py")

    monkeypatch.setattr(personal, "_personal_message", slow_way)  # check the fast path
    report = send(smtp_project)
    assert report.complete and report.recipients_accepted == 25
    assert set(smtp_server.delivered()) == everyone()
    assert set(smtp_server.delivered().values()) == {1}
    for rcpt, raw in smtp_server.messages:
        message = parse(raw)
        assert message["To"].addresses[0].addr_spec == rcpt
        assert message["From"].addresses[0].addr_spec == smtp_project.config.sender.from_email
        assert message["Subject"] and message["Message-ID"] and message["Date"]
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        url = re.search(r"<(https?://[^>]+/unsubscribe/([^>]+))>",
                        message["List-Unsubscribe"])
        assert url is not None
        subscriber_id, slug = read_unsubscribe_token(SECRET.encode(), url.group(2))
        assert slug == "weekly"
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert url.group(1) in text and url.group(1) in html.replace("&amp;", "&")
        database = open_project_database(smtp_project)
        with database.session() as session:
            subscriber = session.get(Subscriber, subscriber_id)
            assert subscriber is not None and subscriber.email == rcpt
            first_name = subscriber.name.split()[0]  # the greeting uses the first name
        database.dispose()
        assert f"Hello {first_name}," in text and f"Hello {first_name}," in html
        assert "{{" not in text and "%%" not in text
    assert set(deliveries(smtp_project).values()) == {DeliveryState.ACCEPTED.value}


def test_550_bounces_that_recipient_in_the_store_and_the_rest_goes_on(smtp_project,
                                                                       smtp_server):
    smtp_server.refuse = {"user3@example.org", "user17@example.org"}
    report = send(smtp_project)
    assert report.complete and report.bounced == 2 and report.recipients_accepted == 23
    assert set(smtp_server.delivered()) == everyone() - smtp_server.refuse
    people = {s.email: s for s in rows(smtp_project, Subscriber)}
    assert people["user3@example.org"].status == "bounced"
    assert people["user4@example.org"].status == "active"
    notes = [h for h in rows(smtp_project, HistoryEntry)
             if h.subscriber_id == people["user3@example.org"].id]
    bounce = [h for h in notes if "550" in h.detail and "User unknown" in h.detail]
    assert bounce and bounce[0].source == "smtp"
    assert deliveries(smtp_project)["user3@example.org"] == DeliveryState.BOUNCED.value


def test_an_address_an_older_version_stored_is_left_out_and_the_batch_goes_on(
        smtp_project, smtp_server):
    # The email package cannot put a non-ASCII part before the @ into a To header: the
    # whole batch used to stop as ambiguous. Now that person alone is not sent to.
    store_as_an_older_version_did(smtp_project, "user4@example.org", "josé@example.org")
    smtp_server.faults = ["451"]  # a batch is tried again
    report = send(smtp_project)
    assert report.complete and report.recipients_accepted == 24
    assert report.refused == ["josé@example.org"] and report.bounced == 0
    assert report.total_ambiguous == 0 and not report.ambiguous
    assert smtp_server.delivered() == {e: 1 for e in everyone() - {"user4@example.org"}}
    assert deliveries(smtp_project)["josé@example.org"] == DeliveryState.BOUNCED.value
    people = {p.email: p for p in rows(smtp_project, Subscriber)}
    assert people["josé@example.org"].status == "active"  # staff correct it; not a bounce
    [overview] = campaigns_status(smtp_project)
    assert overview.messages is not None and overview.messages.ambiguous == 0
    assert overview.messages.unsent == 0 and not overview.ambiguous_messages
    [(number, email, why)] = overview.not_delivered
    assert (number, email) == (1, "josé@example.org") and why.startswith(REASON)
    assert overview.messages.accepted == 24 and overview.messages.bounced == 1
    # The batch-level counts of `status --json` agree: accepted 24, 1 not sent.
    assert overview.counts[BatchState.ACCEPTED].recipients == 24
    assert overview.not_sent.recipients == 1
    with pytest.raises(NewsletterError, match="already sent"):
        send(smtp_project)


@pytest.mark.parametrize("fault", ["451", "421"])
def test_4xx_is_tried_again_later_and_nobody_gets_it_twice(smtp_project, smtp_server, fault):
    smtp_server.faults = [fault, fault]
    report = send(smtp_project)
    assert report.complete and report.recipients_accepted == 25
    assert report.requests > 3  # batches tried again
    assert set(smtp_server.delivered()) == everyone()
    assert set(smtp_server.delivered().values()) == {1}


def test_connection_dropped_before_the_final_dot_is_sent_again(smtp_project, smtp_server):
    smtp_server.drop_before_dot = {"user12@example.org"}
    report = send(smtp_project)
    assert report.complete
    assert smtp_server.delivered() == {e: 1 for e in everyone()}


def test_dropped_after_the_final_dot_only_that_message_is_ambiguous(smtp_project,
                                                                     smtp_server):
    smtp_server.drop_after_dot = {"user7@example.org"}
    report = send(smtp_project)
    assert not report.complete and report.total_ambiguous == 1
    assert report.recipients_accepted == 24
    assert smtp_server.delivered() == {e: 1 for e in everyone()}  # the server had it
    assert deliveries(smtp_project)["user7@example.org"] == DeliveryState.AMBIGUOUS.value
    [overview] = campaigns_status(smtp_project)
    assert overview.messages is not None and overview.messages.ambiguous == 1
    assert [email for _, email, _ in overview.ambiguous_messages] == ["user7@example.org"]
    with pytest.raises(NewsletterError, match="may or may not") as caught:
        plan_send(smtp_project, SendOptions(ISSUE, list_slug="weekly", transport="smtp"), FAST)
    assert "--retry-ambiguous" in (caught.value.hint or "")
    again = send(smtp_project, retry_ambiguous=True)
    assert again.complete and again.recipients_accepted == 1
    delivered = smtp_server.delivered()
    assert delivered["user7@example.org"] == 2
    assert {e for e, n in delivered.items() if n > 1} == {"user7@example.org"}


def test_each_chunk_of_a_batch_records_each_messages_outcome(smtp_project, smtp_server):
    populate(smtp_project, "weekly", 35, start=25)  # 60 in one batch: three chunks of 25
    smtp_server.drop_after_dot = {"user30@example.org"}
    smtp_server.refuse = {"user55@example.org"}
    report = send(smtp_project, replace(FAST, batch_size=60, concurrency=1))
    assert report.recipients_accepted == 58 and report.bounced == 1
    states = deliveries(smtp_project)
    assert states.pop("user30@example.org") == DeliveryState.AMBIGUOUS.value
    assert states.pop("user55@example.org") == DeliveryState.BOUNCED.value
    assert states == {e: DeliveryState.ACCEPTED.value for e in everyone(60)
                      if e not in ("user30@example.org", "user55@example.org")}
    assert smtp_server.delivered() == {e: 1 for e in everyone(60) if e != "user55@example.org"}


def test_a_resumed_send_skips_the_messages_already_accepted(smtp_project, smtp_server):
    # The first run dies (a stop after each accepted message: the runner's workers
    # give up); what was accepted is never sent again.
    smtp_server.drop_before_dot = {"user14@example.org"}
    first = send(smtp_project, SendSettings(batch_size=25, concurrency=1, timeout=5.0,
                                            max_retries=0, backoff_base=0.01))
    assert not first.complete and first.recipients_accepted == 14
    second = send(smtp_project)
    assert second.complete and second.recipients_accepted == 11
    assert smtp_server.delivered() == {e: 1 for e in everyone()}


def test_a_slow_server_is_waited_for(smtp_project, smtp_server):
    smtp_server.delay = 0.05
    report = send(smtp_project)
    assert report.complete and set(smtp_server.delivered()) == everyone()


def test_a_wrong_password_stops_the_send_with_the_fix(smtp_project, smtp_server,
                                                       monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, "wrong-password-123")
    with pytest.raises(NewsletterError) as caught:
        send(smtp_project)
    text = f"{caught.value} {caught.value.hint}"
    assert "535" in text and PASSWORD_ENV in text and "username" in text
    assert "wrong-password-123" not in text
    assert smtp_server.messages == []
    assert {b.state for b in rows(smtp_project, Batch)} <= {"pending", "failed"}


def test_the_password_never_shows(smtp_project):
    transport = SmtpTransport(smtp_project.config, PASSWORD)
    assert PASSWORD not in repr(transport) and PASSWORD not in str(vars(transport).get(
        "settings"))


def test_plain_smtp_only_to_this_computer(sample_project):
    with (sample_project / "newsletter.toml").open("a", encoding="utf-8") as handle:
        handle.write('\n[smtp]\nhost = "smtp.example.org"\nsecurity = "none"\n')
    with pytest.raises(NewsletterError, match=r"newsletter.toml:\d+: \[smtp\] security"):
        Project(sample_project).config  # noqa: B018


def test_the_daily_cap_refuses_a_send_that_does_not_fit(smtp_project, smtp_server):
    with (smtp_project.root / "newsletter.toml").open("a", encoding="utf-8") as handle:
        handle.write("per_day = 20\n")
    project = Project(smtp_project.root)
    with pytest.raises(NewsletterError, match="only 20 can go now") as caught:
        send(project)
    assert "per_day" in (caught.value.hint or "")
    assert smtp_server.messages == []


def test_scheduling_is_refused_for_smtp(smtp_project):
    import datetime as dt

    at = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    with pytest.raises(NewsletterError, match="no scheduling"):
        plan_send(smtp_project, SendOptions(ISSUE, list_slug="weekly", transport="smtp",
                                            at=at), FAST)


def test_the_token_bucket_keeps_to_the_rate():
    import threading
    import time

    bucket = TokenBucket(200, burst=1)
    started = time.monotonic()
    threads = [threading.Thread(target=lambda: [bucket.take() for _ in range(25)])
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started >= 99 / 200 * 0.95
