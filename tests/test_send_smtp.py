"""Sending through the smtp transport to a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.delivery.models import Batch, BatchDelivery, DeliveryState
from newsletter.delivery.planning import SendOptions, SendSettings, plan_send
from newsletter.delivery.send import run_send
from newsletter.delivery.smtp import PASSWORD_ENV, SmtpTransport, TokenBucket
from newsletter.delivery.status import campaigns_status
from newsletter.errors import NewsletterError
from newsletter.project import Project
from newsletter.store import HistoryEntry, Subscriber, open_project_database
from newsletter.tokens import read_unsubscribe_token
from tests.plugins.fake_sendgrid import SECRET, populate
from tests.plugins.smtp_server import PASSWORD, SmtpServer, smtp_server  # noqa: F401

ISSUE = Path("issues/2021-02-01.yaml")
FAST = SendSettings(batch_size=10, concurrency=2, timeout=5.0, max_retries=3,
                    backoff_base=0.01, backoff_cap=0.05)


@pytest.fixture
def smtp_project(sample_project: Path, smtp_server: SmtpServer,
                 monkeypatch: pytest.MonkeyPatch) -> Project:
    """The sample project sending through the test server, with a list 'weekly' of 25."""
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
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


def test_every_recipient_gets_one_complete_personal_message(smtp_project, smtp_server):
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
            name = subscriber.name
        database.dispose()
        assert name in text and name in html
        assert "{{" not in text and "%%" not in text
    assert set(deliveries(smtp_project).values()) == {DeliveryState.ACCEPTED.value}
