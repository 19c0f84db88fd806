"""Periodic chores shared by every worker of the web service: one lease row per chore.

A chore (e.g. forgetting old webhook event ids) should run once per period,
whichever worker or process gets to it first, however many there are. Each chore
has a row: who did it last and until when nobody needs to. :func:`take_turn`
takes it with one conditional UPDATE (or INSERT, the first time), so of several
workers asking at once exactly one gets it, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import String, Table, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from .models import Base, UTCDateTime, utcnow


class ChoreLease(Base):
    """Which worker last did a chore, and when the next turn is due."""

    __tablename__ = "chore_leases"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())


def take_turn(session: Session, name: str, holder: str, *, period: float,
              now: datetime | None = None) -> bool:
    """True if ``holder`` should do chore ``name`` now (and nobody else for ``period`` s).

    The caller commits (promptly: the row is locked until then on PostgreSQL).
    """
    now = now or utcnow()
    due = now + timedelta(seconds=period)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = cast(Table, ChoreLease.__table__)
    created = session.execute(
        insert(table).values(name=name, holder=holder[:200], due_at=due)
        .on_conflict_do_nothing(index_elements=["name"]).returning(table.c.name)
    ).scalar()
    if created is not None:
        return True
    taken = session.execute(
        update(table).where(table.c.name == name, table.c.due_at <= now)
        .values(holder=holder[:200], due_at=due).returning(table.c.name)
    ).scalar()
    return taken is not None
