"""The one SendGrid client, against the fake SendGrid (which validates every request)."""

from __future__ import annotations

import socket
from pathlib import Path
from random import Random

import pytest

from newsletter.delivery import send_one
from newsletter.delivery.problems import Ambiguous, Rejected, Retryable
from newsletter.delivery.sendgrid_client import SendGridClient
from newsletter.errors import NewsletterError
from newsletter.project import Project
from newsletter.retry import RetryPolicy
from tests.plugins.fake_sendgrid import DROP, FakeSendGrid, Reply


def test_send_one_retries_with_the_policy_and_honours_the_reset(
        sample_project: Path, fake_sendgrid: FakeSendGrid) -> None:
    fake_sendgrid.script(Reply(503), Reply(429, reset_in=2.0))
    waits: list[float] = []
    send_one(Project(sample_project), to="ann@example.org", subject="Hi", html="<p>Hi</p>",
             text="Hi", transport="sendgrid", policy=RetryPolicy(base=0.5, rng=Random(5)),
             sleep=waits.append)
    assert [a.emails for a in fake_sendgrid.accepted] == [["ann@example.org"]]
    assert waits[0] == RetryPolicy(base=0.5, rng=Random(5)).backoff(1)
    assert 1.0 < waits[1] <= 2.001  # the fake rounds the reset to milliseconds


def test_send_one_gives_up_on_a_far_reset_and_on_a_rejection(
        sample_project: Path, fake_sendgrid: FakeSendGrid) -> None:
    project = Project(sample_project)
    fake_sendgrid.script(Reply(429, reset_in=600))
    with pytest.raises(NewsletterError, match="rate limit"):
        send_one(project, to="ann@example.org", subject="Hi", html="<p>Hi</p>", text="Hi",
                 transport="sendgrid", sleep=pytest.fail)
    fake_sendgrid.script(Reply(400, errors=(("subject", "too long"),)))
    with pytest.raises(NewsletterError, match="subject: too long"):
        send_one(project, to="ann@example.org", subject="Hi", html="<p>Hi</p>", text="Hi",
                 transport="sendgrid", sleep=pytest.fail)


def test_the_client_sends_unicode_and_schedules_through_the_public_interface(
        fake_sendgrid: FakeSendGrid) -> None:
    client = SendGridClient(fake_sendgrid.api_key, timeout=5)
    body = {"personalizations": [{"to": [{"email": "zoë@example.org", "name": "Zoë “Z”"}]}],
            "from": {"email": "brief@example.org"}, "subject": "Grüße ✓",
            "content": [{"type": "text/plain", "value": "naïve ☃"}]}
    client.mail_send(body)
    assert fake_sendgrid.accepted[0].body == body
    batch = client.create_batch_id()
    assert batch in fake_sendgrid.batch_ids
    client.cancel_scheduled(batch)
    assert fake_sendgrid.scheduled == {batch: "cancel"}
    with pytest.raises(Rejected):
        client.cancel_scheduled("no-such-batch")
    assert fake_sendgrid.api_key not in repr(client)


def test_a_dropped_answer_is_ambiguous_and_a_refused_connection_retryable(
        fake_sendgrid: FakeSendGrid) -> None:
    body = {"personalizations": [{"to": [{"email": "a@example.org"}]}],
            "from": {"email": "brief@example.org"}, "subject": "Hi",
            "content": [{"type": "text/plain", "value": "x"}]}
    fake_sendgrid.script(DROP)
    with pytest.raises(Ambiguous):
        SendGridClient(fake_sendgrid.api_key, timeout=5).mail_send(body)
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(Retryable):
        SendGridClient("SG.x", host=f"http://127.0.0.1:{port}", timeout=5).mail_send(body)
