"""Rate-limit counters kept in the database, so every ``serve`` worker shares them.

One row per key (e.g. a hashed client address or mailbox): the start of its current
window, in whole seconds since the epoch, and how many hits it has had since then.
:func:`hit` counts one hit with a single atomic upsert, on SQLite and PostgreSQL alike:
a row whose window has ended starts a new one at 1.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import BigInteger, Integer, String, Table, case, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from .models import Base

KEY_LENGTH = 100


class RateLimitCount(Base):
    """Hits of one rate-limit key in its current (fixed) window."""

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, index=True)
    count: Mapped[int] = mapped_column(Integer)


def hit(session: Session, key: str, *, window: int, now: int) -> int:
    """Count one hit for ``key`` at ``now`` (epoch seconds); the hits in its window so far.

    Atomic: concurrent callers (threads or processes) each get their own count.
    The caller commits.
    """
    if len(key) > KEY_LENGTH:
        raise ValueError(f"rate-limit keys have at most {KEY_LENGTH} characters")
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = cast(Table, RateLimitCount.__table__)
    ended = table.c.window_start <= now - window
    # Both databases compute every SET value from the row as it was before the update.
    statement = insert(table).values(key=key, window_start=now, count=1).on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "count": case((ended, 1), else_=table.c.count + 1),
            "window_start": case((ended, now), else_=table.c.window_start),
        },
    ).returning(table.c.count)
    return int(session.execute(statement).scalar_one())


def forget_old(session: Session, *, older_than: int) -> int:
    """Delete counters whose window started before ``older_than``; how many went."""
    result = session.execute(
        delete(RateLimitCount).where(RateLimitCount.window_start < older_than)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
