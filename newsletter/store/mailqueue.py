"""Transactional emails (confirm, welcome) kept in the database until they are sent.

The web service puts each message here before it tries to send it, and deletes it
once the transport took it. A message the transport could not take stays
``waiting`` with the time of its next attempt; after :data:`MAX_ATTEMPTS` it is
``failed`` (``newsletter status`` shows both counts). Any worker may send a due
message: :func:`claim_due` takes it with a short claim, in one conditional UPDATE,
so two workers never send it at the same time.

Each row holds the address and the rendered message (with its confirmation link):
sent messages are deleted at once, failed ones after :data:`KEEP_FAILED_DAYS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Integer, String, Text, delete, func, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..project import Project
from .database import open_project_database
from .models import Base, UTCDateTime, utcnow

WAITING = "waiting"
FAILED = "failed"
MAX_ATTEMPTS = 24  # with a backoff capped at an hour: about a day of trying
KEEP_FAILED_DAYS = 30
CLAIM_SECONDS = 120  # one attempt (with the transport's timeout) ends well within this


class QueuedMail(Base):
    """One transactional message waiting to be sent (or given up on)."""

    __tablename__ = "mail_queue"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default=WAITING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


@dataclass(frozen=True)
class Message:
    """A claimed message, readable outside the session."""

    id: int
    kind: str
    to: str
    subject: str
    html: str
    text: str
    attempts: int


def enqueue(session: Session, *, kind: str, to: str, subject: str, html: str, text: str,
            claim: bool = True, now: datetime | None = None) -> int:
    """Keep one message; its id. ``claim``: the caller is about to try it itself."""
    now = now or utcnow()
    row = QueuedMail(kind=kind[:40], recipient=to, subject=subject, html=html, text=text,
                     status=WAITING, attempts=0, next_at=now, last_error="", created_at=now,
                     claimed_until=now + timedelta(seconds=CLAIM_SECONDS) if claim else None)
    session.add(row)
    session.flush()
    return int(row.id)


def claim_due(session: Session, *, limit: int = 20, now: datetime | None = None) -> list[Message]:
    """Claim up to ``limit`` waiting messages whose time has come (none another worker holds)."""
    now = now or utcnow()
    free = or_(QueuedMail.claimed_until.is_(None), QueuedMail.claimed_until < now)
    due = session.scalars(
        select(QueuedMail).where(QueuedMail.status == WAITING, QueuedMail.next_at <= now, free)
        .order_by(QueuedMail.next_at).limit(limit)
    ).all()
    claimed = []
    for row in due:
        taken = session.execute(
            update(QueuedMail).where(QueuedMail.id == row.id, free)
            .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(Message(row.id, row.kind, row.recipient, row.subject, row.html,
                                   row.text, row.attempts))
    return claimed


def mark_sent(session: Session, message_id: int) -> None:
    """The transport took it: forget the message."""
    session.execute(delete(QueuedMail).where(QueuedMail.id == message_id))


def mark_failed_attempt(session: Session, message_id: int, error: str, *, retry_in: float | None,
                        now: datetime | None = None) -> str:
    """One attempt failed: try again in ``retry_in`` seconds, or give up (None, or too many).

    Returns the message's new status (``waiting`` or ``failed``).
    """
    now = now or utcnow()
    row = session.get(QueuedMail, message_id)
    if row is None:
        return FAILED
    row.attempts += 1
    row.last_error = error[:500]
    row.claimed_until = None
    if retry_in is None or row.attempts >= MAX_ATTEMPTS:
        row.status = FAILED
    else:
        row.next_at = now + timedelta(seconds=retry_in)
    return row.status


def forget_old_failed(session: Session, *, days: int = KEEP_FAILED_DAYS) -> int:
    """Delete failed messages older than ``days``; how many went."""
    cutoff = utcnow() - timedelta(days=days)
    result = session.execute(delete(QueuedMail).where(QueuedMail.status == FAILED,
                                                      QueuedMail.created_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def counts(session: Session) -> dict[str, int]:
    """How many messages are waiting and failed: ``{"waiting": n, "failed": m}``."""
    found = {WAITING: 0, FAILED: 0}
    for status, number in session.execute(
        select(QueuedMail.status, func.count()).group_by(QueuedMail.status)
    ):
        found[str(status)] = int(number)
    return found


def queue_counts(project: Project) -> dict[str, int]:
    """:func:`counts` for the project's database (for `newsletter status`)."""
    database = open_project_database(project)
    try:
        with database.session() as session:
            return counts(session)
    finally:
        database.dispose()
