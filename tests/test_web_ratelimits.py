"""Rate limits kept in the database: shared by every worker, atomic, windowed, forgotten."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.store import Database, ratelimits
from newsletter.web.context import Limits
from newsletter.web.security import mailbox_key, rate_key
from tests.servers import wait_idle
from tests.test_web import Service, start_service


def test_counts_restart_when_the_window_ends_and_old_counters_are_forgotten(
    database: Database,
) -> None:
    with database.transaction() as session:
        assert [ratelimits.hit(session, "k", window=60, now=1000) for _ in range(3)] == [1, 2, 3]
        assert ratelimits.hit(session, "k", window=60, now=1059) == 4  # still that window
        assert ratelimits.hit(session, "k", window=60, now=1060) == 1  # a new one
        assert ratelimits.hit(session, "k", window=60, now=1061) == 2
        assert ratelimits.hit(session, "other", window=60, now=500) == 1
        assert ratelimits.forget_old(session, older_than=1000) == 1
        assert ratelimits.hit(session, "other", window=60, now=1000) == 1
        assert ratelimits.hit(session, "k", window=60, now=1062) == 3  # kept


def test_concurrent_hits_each_get_their_own_count(database: Database) -> None:
    counts: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        for _ in range(10):
            with database.transaction() as session:
                count = ratelimits.hit(session, "shared", window=3600, now=1000)
            with lock:
                counts.append(count)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(counts) == list(range(1, 81))


def test_keys_are_hashed_and_tag_aliases_share_a_mailbox() -> None:
    assert mailbox_key("Ann+news@Example.org") == mailbox_key("ann@example.org")
    assert mailbox_key("a.n.n+x@googlemail.com") == mailbox_key("ann@gmail.com")
    assert mailbox_key("a.nn@example.org") != mailbox_key("ann@example.org")  # not Gmail
    key = rate_key("mailbox", "ann@example.org")
    assert "ann" not in key and key.startswith("mailbox:") and len(key) <= ratelimits.KEY_LENGTH


@pytest.fixture
def two_workers(project_database_url: str, sample_project: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Service, Service]]:
    """Two apps on one database (SQLite file or PostgreSQL), like two serve workers."""
    limits = Limits(signups_per_ip=5, signups_per_address=2)
    for first in start_service(sample_project, monkeypatch, verifier=None, limits=limits):
        for second in start_service(sample_project, monkeypatch, verifier=None, limits=limits):
            assert first.db is not second.db
            backend = first.db.engine.dialect.name
            assert project_database_url.startswith(backend)  # the backend under test
            yield first, second


def test_two_workers_share_the_per_address_limit(two_workers: tuple[Service, Service]) -> None:
    first, second = two_workers
    for i in range(4):
        worker = (first, second)[i % 2]
        answer = worker.client.post("/subscribe/weekly", json={"email": f"victim+{i}@example.org"})
        assert answer.status_code == 200
    wait_idle(first.url)
    wait_idle(second.url)
    assert len(first.outbox()) == 2  # one outbox: both workers serve the same project


def test_two_workers_share_the_per_ip_limit(two_workers: tuple[Service, Service]) -> None:
    first, second = two_workers
    answers = [(first, second)[i % 2].client.post(
        "/subscribe/weekly", json={"email": f"person{i}@example.org"}).status_code
        for i in range(6)]
    assert answers == [200] * 5 + [429]
