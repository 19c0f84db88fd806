"""Never twice, never lost: kill the sending process at random moments, resume, count."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.delivery.batchrecipients import frozen_ids
from newsletter.delivery.models import Batch, BatchState
from newsletter.project import Project
from newsletter.store import Subscriber, open_project_database
from tests.plugins.fake_sendgrid import SECRET, FakeSendGrid, own_identity, populate
from tests.plugins.waiting import wait_until

ISSUE = "issues/2021-02-01.yaml"
PEOPLE = 20_000
SEND = [sys.executable, "-c", "from newsletter.cli import main; main()",
        "send", ISSUE, "--list", "weekly", "--transport", "sendgrid", "--yes"]


def _env(fake: FakeSendGrid) -> dict[str, str]:
    env = dict(os.environ)
    env.update(SENDGRID_API_HOST=fake.url, SENDGRID_API_KEY=fake.api_key,
               NEWSLETTER_SECRET=SECRET, COLUMNS="100")
    env.pop("NEWSLETTER_DATABASE_URL", None)
    return env


def _wait_for_accepted(fake: FakeSendGrid, process: subprocess.Popen, count: int,
                       limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while len(fake.accepted) < count and process.poll() is None:
        assert time.monotonic() < deadline, "the send never got going"
        time.sleep(0.005)


def _wait(condition, message: str) -> None:  # type: ignore[no-untyped-def]
    wait_until(condition, timeout=60, message=message)


def _read_until(stream, text: str, limit: float = 60) -> str:  # type: ignore[no-untyped-def]
    """Lines of ``stream`` (read in a thread) up to the one containing ``text``."""
    seen: list[str] = []
    found = threading.Event()

    def read() -> None:
        for line in stream:
            seen.append(line)
            if text in line:
                found.set()
                return

    threading.Thread(target=read, daemon=True).start()
    assert found.wait(limit), f"{text!r} never appeared in: {''.join(seen)[-2000:]}"
    return "".join(seen)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


def _assert_gone(pids: list[int], limit: float = 5) -> None:
    """Helper processes of a killed send must not outlive it."""
    deadline = time.monotonic() + limit
    for pid in pids:
        while Path(f"/proc/{pid}").exists() and "zombie" not in _state_of(pid):
            assert time.monotonic() < deadline, f"helper process {pid} outlived its parent"
            time.sleep(0.05)


def _state_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return "zombie"


def _ambiguous_emails(project: Project) -> set[str]:
    database = open_project_database(project)
    try:
        with database.session() as session:
            left = session.scalars(
                select(Batch).where(Batch.state == BatchState.SUBMITTING.value)
            ).all()
            ids = [i for batch in left
                   for i in frozen_ids(session, batch.campaign_id, batch.number)]
            emails = session.scalars(select(Subscriber.email).where(Subscriber.id.in_(ids)))
            return set(emails)
    finally:
        database.dispose()


def _states(project: Project) -> list[str]:
    database = open_project_database(project)
    try:
        with database.session() as session:
            return list(session.scalars(select(Batch.state).order_by(Batch.number)))
    finally:
        database.dispose()


def test_sigkill_at_random_moments_then_resume_delivers_everyone_at_most_once(
    sample_project: Path, fake_sendgrid: FakeSendGrid, rng: random.Random
):
    own_identity(sample_project)  # real sends refuse the sample's address
    project = Project(sample_project)
    populate(project, "weekly", PEOPLE)
    fake_sendgrid.delay = 0.1  # each request takes a while, so kills land mid-request
    env = _env(fake_sendgrid)
    kills = 0
    left_unsent = []  # after each kill: were batches still waiting to be sent?
    for _ in range(3):
        process = subprocess.Popen(SEND, cwd=sample_project, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _wait_for_accepted(fake_sendgrid, process,
                           len(fake_sendgrid.accepted) + rng.randint(1, 3))
        time.sleep(rng.uniform(0.0, 0.15))
        if process.poll() is None:
            helpers = _children(process.pid)
            process.send_signal(signal.SIGKILL)
            kills += 1
            process.wait(30)
            _assert_gone(helpers)
        process.wait(30)
        states = _states(project)
        left_unsent.append("pending" in states or "failed" in states)
        if not left_unsent[-1]:
            break
    assert kills >= 2, "the send finished before it was killed twice; slow the fake down"
    assert left_unsent[0], "the first kill came after the last batch; slow the fake down"
    for _ in range(5):  # resume until only ambiguous batches (if any) are left
        finished = subprocess.run(SEND, cwd=sample_project, env=env, capture_output=True,
                                  text=True, timeout=120)
        if finished.returncode == 0 or "no answer" in finished.stderr:
            break
    else:
        raise AssertionError(f"the send never completed: {finished.stderr}")
    assert set(_states(project)) <= {"accepted", "submitting"}
    ambiguous = _ambiguous_emails(project)
    delivered = fake_sendgrid.delivered()
    everyone = {f"user{i}@example.org" for i in range(PEOPLE)}
    assert set(delivered) <= everyone
    assert max(delivered.values()) == 1, "someone got the issue twice"
    assert everyone - ambiguous <= set(delivered), "someone outside ambiguous batches missed it"
    assert len(ambiguous) <= 4 * 1000 * kills  # at most the requests in flight at each kill
    if ambiguous:  # the operator decides to resend them: only they can get it twice
        again = subprocess.run([*SEND, "--retry-ambiguous"], cwd=sample_project, env=env,
                               capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        delivered = fake_sendgrid.delivered()
        assert set(delivered) == everyone
        assert {email for email, n in delivered.items() if n > 1} <= ambiguous


# SIGTERM (systemd, `kill`) and SIGHUP (a closed terminal) stop a send as Ctrl-C does:
# a crash would leave the requests in flight ambiguous.
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=["ctrl-c", "SIGTERM", "SIGHUP"])
def test_ctrl_c_finishes_requests_in_flight_and_the_same_command_resumes(
    sample_project: Path, fake_sendgrid: FakeSendGrid, stop: signal.Signals
):
    own_identity(sample_project)  # real sends refuse the sample's address
    project = Project(sample_project)
    populate(project, "weekly", 8_000)
    # Two requests are answered; the next ones wait at the gate until Ctrl-C was seen.
    fake_sendgrid.gate, fake_sendgrid.gate_free = threading.Event(), 2
    env = _env(fake_sendgrid)
    process = subprocess.Popen(SEND, cwd=sample_project, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_accepted(fake_sendgrid, process, 2)
        _wait(lambda: fake_sendgrid.in_flight >= 1, "a request waits at the gate")
        process.send_signal(stop)
        seen = _read_until(process.stdout, "Stopping:")
    finally:
        fake_sendgrid.gate.set()
    out, err = process.communicate(timeout=30)
    assert "Stopping:" in seen + out
    assert process.returncode != 0
    assert "interrupted" in err and "again to resume" in err
    states = _states(project)
    assert "submitting" not in states and "pending" in states
    finished = subprocess.run(SEND, cwd=sample_project, env=env, capture_output=True,
                              text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    delivered = fake_sendgrid.delivered()
    assert set(delivered) == {f"user{i}@example.org" for i in range(8_000)}
    assert set(delivered.values()) == {1}
