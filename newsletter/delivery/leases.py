"""Who holds which batch, and until when: owners, leases and the heartbeat renewing them.

Every running sender has a random id (host, pid, token). It *reserves* the
batches it is about to build (they stay ``pending``), *claims* one just before
its request (``submitting``), and holds both with a lease that a heartbeat
thread renews. Other senders of the same campaign skip batches with a live
lease, so several `newsletter send` processes, on several machines sharing one
PostgreSQL, can work through one campaign together. A batch in ``submitting``
is only *ambiguous* (maybe sent) once its lease has run out or was given up:
until then its sender is alive and waiting for the answer.

On PostgreSQL, times come from the database's clock (one clock for every
machine); on SQLite, which lives on one machine, from Python's.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from ..store.models import UTCDateTime, table, utcnow
from .models import Batch, BatchState

batches = table(Batch)
log = logging.getLogger(__name__)

# How long a lease lasts and how often the heartbeat renews it (seconds). The
# environment variables exist for tests, which kill a sender and want its
# leases to run out quickly.
LEASE_ENV = "NEWSLETTER_SEND_LEASE_SECONDS"
HEARTBEAT_ENV = "NEWSLETTER_SEND_HEARTBEAT_SECONDS"
DEFAULT_LEASE = 60.0
DEFAULT_HEARTBEAT = 15.0


def lease_settings() -> tuple[float, float]:
    """(lease, heartbeat) in seconds: the defaults, or the environment's for tests."""
    lease = float(os.environ.get(LEASE_ENV) or DEFAULT_LEASE)
    heartbeat = float(os.environ.get(HEARTBEAT_ENV) or min(DEFAULT_HEARTBEAT, lease / 4))
    return lease, heartbeat


def new_sender_id() -> str:
    """A random id for one sending process: 'host:pid:token' (at most 120 characters)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(6)}"


def now_expr(dialect_name: str) -> ColumnElement[Any]:
    """The current time as SQL: the server's clock on PostgreSQL, Python's on SQLite."""
    if dialect_name == "postgresql":
        return func.now()
    return literal(utcnow(), UTCDateTime())


def until_expr(dialect_name: str, seconds: float) -> ColumnElement[Any]:
    """``seconds`` from now, as SQL (see :func:`now_expr`)."""
    if dialect_name == "postgresql":
        return func.now() + timedelta(seconds=seconds)
    return literal(utcnow() + timedelta(seconds=seconds), UTCDateTime())


def live(dialect_name: str) -> ColumnElement[bool]:
    """The batch's lease has not run out."""
    return and_(batches.c.lease_expires_at.is_not(None),
                batches.c.lease_expires_at > now_expr(dialect_name))


def free(dialect_name: str) -> ColumnElement[bool]:
    """Nobody holds the batch: no lease, or one that ran out."""
    return or_(batches.c.lease_expires_at.is_(None),
               batches.c.lease_expires_at <= now_expr(dialect_name))


@dataclass(frozen=True)
class Reserved:
    """A batch this sender reserved: its row id, number, state and frozen size."""

    id: int
    number: int
    state: str
    recipient_count: int


def reserve(connection: Connection, campaign_id: int, states: Sequence[str], owner: str,
            lease: float, limit: int) -> list[Reserved]:
    """Take up to ``limit`` free batches in ``states`` (lowest numbers first) for ``owner``.

    Batches this owner held before in this run are not taken again (a run tries
    each batch once). Submitting batches are only taken once their lease ran out.
    On PostgreSQL, ``FOR UPDATE SKIP LOCKED`` lets concurrent senders pass each
    other; SQLite has one writer at a time, so the single UPDATE is atomic there.
    Commits; returns what was reserved, by number.
    """
    dialect = connection.dialect.name
    candidates = (
        select(batches.c.id)
        .where(batches.c.campaign_id == campaign_id, batches.c.state.in_(list(states)),
               free(dialect), or_(batches.c.owner.is_(None), batches.c.owner != owner))
        .order_by(batches.c.number)
        .limit(limit)
    )
    if dialect == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    with connection.begin():
        rows = connection.execute(
            update(batches)
            .where(batches.c.id.in_(candidates.scalar_subquery()))
            .values(owner=owner, lease_expires_at=until_expr(dialect, lease))
            .returning(batches.c.id, batches.c.number, batches.c.state,
                       batches.c.recipient_count)
        ).all()
    return sorted((Reserved(*row) for row in rows), key=lambda r: r.number)


def renew(connection: Connection, owner: str, lease: float) -> int:
    """Extend every lease ``owner`` holds by ``lease`` seconds from now; how many."""
    with connection.begin():
        return connection.execute(
            update(batches)
            .where(batches.c.owner == owner, batches.c.lease_expires_at.is_not(None),
                   batches.c.state != BatchState.ACCEPTED.value)
            .values(lease_expires_at=until_expr(connection.dialect.name, lease))
        ).rowcount


def release_all(engine: Engine, owner: str) -> None:
    """Give up every lease ``owner`` still holds (at the end of a run).

    Reserved batches never sent become free for others; a batch still in
    submitting (its answer never recorded) becomes ambiguous at once.
    """
    with engine.begin() as connection:
        connection.execute(
            update(batches)
            .where(batches.c.owner == owner, batches.c.lease_expires_at.is_not(None))
            .values(lease_expires_at=None)
        )


def _dead_here(owner: str) -> bool:
    """``owner`` ran on this host and its process is gone (so its holds can end now)."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname()[:80] or not parts[1].isdigit():
        return False
    pid_text = parts[1]
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, but someone else's
        return False
    return False


def end_dead_leases(engine: Engine, campaign_id: int) -> int:
    """End at once the leases of senders on this host whose process has died.

    A sender killed on this machine would otherwise block its batches until its
    lease ran out: its reserved batches become free, and a batch it left in
    submitting becomes ambiguous (it may have been sent). Senders on other hosts
    are only judged by their lease. Returns how many owners were found dead.
    """
    with engine.begin() as connection:
        owners = connection.execute(
            select(batches.c.owner).distinct().where(
                batches.c.campaign_id == campaign_id, batches.c.owner.is_not(None),
                batches.c.lease_expires_at.is_not(None))
        ).scalars().all()
        dead = [owner for owner in owners if owner and _dead_here(owner)]
        if dead:
            connection.execute(
                update(batches)
                .where(batches.c.campaign_id == campaign_id, batches.c.owner.in_(dead))
                .values(lease_expires_at=None)
            )
    return len(dead)


@dataclass(frozen=True)
class HeldElsewhere:
    """Unfinished batches that other live senders hold, and when the last lease runs out."""

    batches: int = 0
    recipients: int = 0
    until: datetime | None = None


def held_elsewhere(engine: Engine, campaign_id: int, owner: str | None = None) -> HeldElsewhere:
    """Batches of a campaign, not accepted, under a live lease of a sender other than ``owner``."""
    with engine.connect() as connection:
        dialect = connection.dialect.name
        query = select(func.count(), func.sum(batches.c.recipient_count),
                       func.max(batches.c.lease_expires_at)).where(
            batches.c.campaign_id == campaign_id,
            batches.c.state != BatchState.ACCEPTED.value, live(dialect))
        if owner is not None:
            query = query.where(batches.c.owner != owner)
        n, recipients, until = connection.execute(query).one()
    if isinstance(until, str):  # pragma: no cover - SQLite aggregates lose the type
        until = datetime.fromisoformat(until)
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=utcnow().tzinfo)
    return HeldElsewhere(int(n or 0), int(recipients or 0), until)


class Heartbeat:
    """A thread renewing this sender's leases every ``every`` seconds until stopped."""

    def __init__(self, engine: Engine, owner: str, lease: float, every: float) -> None:
        self.engine, self.owner, self.lease, self.every = engine, owner, lease, every
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="lease-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.done.wait(self.every):
            try:
                with self.engine.connect() as connection:
                    renew(connection, self.owner, self.lease)
            except SQLAlchemyError as exc:  # the database is away: try again next beat
                log.warning("could not renew the send's leases: %s", type(exc).__name__)

    def stop(self) -> None:
        self.done.set()
        self.thread.join()


def count_free(engine: Engine, campaign_id: int, states: Sequence[str]) -> tuple[int, int]:
    """(batches, recipients) of a campaign in ``states`` that nobody holds."""
    with engine.connect() as connection:
        n, recipients = connection.execute(
            select(func.count(), func.sum(batches.c.recipient_count)).where(
                batches.c.campaign_id == campaign_id, batches.c.state.in_(list(states)),
                free(connection.dialect.name))
        ).one()
    return int(n or 0), int(recipients or 0)
