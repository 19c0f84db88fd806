"""Never twice, never lost, over SMTP: SIGKILL a 5,000-recipient send at random moments,
resume, and count what the server received."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.delivery.models import BatchDelivery, DeliveryState
from newsletter.delivery.smtp import CHUNK, PASSWORD_ENV
from newsletter.project import Project
from newsletter.store import Subscriber, open_project_database
from tests.plugins.fake_sendgrid import SECRET, own_identity, populate
from tests.plugins.smtp_server import PASSWORD, SmtpServer, running

ISSUE = "issues/2021-02-01.yaml"
PEOPLE = 5_000
SEND = [sys.executable, "-c", "from newsletter.cli import main; main()",
        "send", ISSUE, "--list", "weekly", "--transport", "smtp", "--yes"]


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[SmtpServer]:
    yield from running(tmp_path / "smtp-tls")


def _ambiguous(project: Project) -> set[str]:
    """Addresses whose message is recorded ambiguous (or left mid-send by a killed sender)."""
    database = open_project_database(project)
    try:
        with database.session() as session:
            return set(session.scalars(
                select(Subscriber.email)
                .join(BatchDelivery, BatchDelivery.subscriber_id == Subscriber.id)
                .where(BatchDelivery.state.in_([DeliveryState.AMBIGUOUS.value,
                                                DeliveryState.SENDING.value]))))
    finally:
        database.dispose()


def test_sigkill_at_random_moments_then_resume_delivers_everyone_at_most_once(
    sample_project: Path, smtp_server: SmtpServer, rng: random.Random
):
    own_identity(sample_project)  # real transports refuse the sample newsletter's identity
    with (sample_project / "newsletter.toml").open("a", encoding="utf-8") as handle:
        handle.write(smtp_server.smtp_table(connections=4))
    project = Project(sample_project)
    populate(project, "weekly", PEOPLE)
    env = dict(os.environ, NEWSLETTER_SECRET=SECRET, COLUMNS="100")
    env[PASSWORD_ENV] = PASSWORD
    env.pop("NEWSLETTER_DATABASE_URL", None)
    smtp_server.delay = 0.002  # each answer takes a moment, so kills land mid-message
    kills = 0
    for _ in range(3):
        process = subprocess.Popen(SEND, cwd=sample_project, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        target = len(smtp_server.messages) + rng.randint(20, 600)
        deadline = time.monotonic() + 120
        while len(smtp_server.messages) < target and process.poll() is None:
            assert time.monotonic() < deadline, "the send never got going"
            time.sleep(0.002)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(30)
    assert kills >= 2, "the send finished before it was killed twice; slow the server down"
    assert len(smtp_server.delivered()) < PEOPLE, "the kills came too late"
    smtp_server.delay = 0.0
    for _ in range(5):  # resume until only ambiguous messages (if any) are left
        finished = subprocess.run(SEND, cwd=sample_project, env=env, capture_output=True,
                                  text=True, timeout=300)
        if finished.returncode == 0 or "may or may not" in finished.stderr:
            break
    else:
        raise AssertionError(f"the send never completed: {finished.stderr}")
    ambiguous = _ambiguous(project)
    delivered = smtp_server.delivered()
    everyone = {f"user{i}@example.org" for i in range(PEOPLE)}
    assert set(delivered) <= everyone
    assert max(delivered.values()) == 1, "someone got the issue twice"
    assert everyone - ambiguous <= set(delivered), "someone outside the ambiguous missed it"
    # At most one chunk (recorded `sending` together) per connection per kill.
    assert len(ambiguous) <= 4 * CHUNK * kills
    if ambiguous:  # the operator resends them: only they can get it twice
        again = subprocess.run([*SEND, "--retry-ambiguous"], cwd=sample_project, env=env,
                               capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        delivered = smtp_server.delivered()
        assert set(delivered) == everyone
        assert {email for email, n in delivered.items() if n > 1} <= ambiguous
