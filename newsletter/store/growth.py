"""A list's joiners and leavers per day, kept from the subscriber history for the reports.

Counting a list's joiners week by week straight from ``subscriber_history`` reads every
row of those weeks: a million after a big import, most of a second on each report. So
``list_day_counts`` (migration 0012) keeps, per list, UTC day and new status (subscribed
or unsubscribed), how many history rows changed a membership to it. It is exact:

- :func:`fold_history` adds the rows above a high-water mark (``sync_state``
  "history_counted_upto") and moves the mark; the reports call it first, so an import of
  a million rows costs nothing more while importing and is read once, by the next report;
- deleting or changing a row at or below the mark changes the counts through a trigger
  (forgetting a person, deleting a subscriber or a list with its history).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .database import Database
from .models import HistoryEntry, ListDayCount, SyncState

MARK = "history_counted_upto"
JOINED, LEFT = "subscribed", "unsubscribed"


def _day_sql(dialect: str) -> str:
    return "(at AT TIME ZONE 'UTC')::date" if dialect == "postgresql" else "date(at)"


def fold_history(database: Database) -> int:
    """Add the history rows written since the last fold to ``list_day_counts``; returns
    how many rows were read (0 when nothing new: a cheap check, no write)."""
    with database.session() as session:
        mark = session.scalar(select(SyncState.value).where(SyncState.name == MARK))
        top = session.scalar(select(func.max(HistoryEntry.id)))
    if top is None or (mark is not None and int(mark) >= top):
        return 0
    with database.transaction() as session:
        connection = session.connection()
        dialect = connection.dialect.name
        if dialect == "postgresql":
            # No row may be added or deleted meanwhile: a row still being inserted could
            # have an id below the new mark and never be counted.
            connection.exec_driver_sql("LOCK TABLE subscriber_history IN SHARE MODE")
        # On SQLite this first statement is a write, so it takes the one write lock
        # before anything is read: two reports cannot both fold the same rows.
        connection.exec_driver_sql(
            "INSERT INTO sync_state (name, value, updated_at) VALUES (%s, '0', %s) "
            "ON CONFLICT (name) DO NOTHING".replace("%s", _mark(dialect)),
            (MARK, _now(connection)))
        start = int(connection.exec_driver_sql(
            "SELECT value FROM sync_state WHERE name = " + _mark(dialect), (MARK,)).scalar_one())
        end = session.scalar(select(func.max(HistoryEntry.id))) or 0
        if end <= start:
            return 0
        p = _mark(dialect)
        connection.exec_driver_sql(
            "INSERT INTO list_day_counts (list_id, day, status, count) "
            f"SELECT list_id, {_day_sql(dialect)}, new_status, count(*) FROM subscriber_history "
            f"WHERE id > {p} AND id <= {p} AND list_id IS NOT NULL "
            f"AND new_status IN ({p}, {p}) AND old_status IS DISTINCT FROM new_status "
            f"GROUP BY list_id, {_day_sql(dialect)}, new_status "
            "ON CONFLICT (list_id, day, status) DO UPDATE "
            "SET count = list_day_counts.count + excluded.count",
            (start, end, JOINED, LEFT))
        connection.exec_driver_sql(
            f"UPDATE sync_state SET value = {p}, updated_at = {p} WHERE name = {p}",
            (str(end), _now(connection), MARK))
        return end - start


def _mark(dialect: str) -> str:
    return "%s" if dialect == "postgresql" else "?"


def _now(connection: Any) -> Any:
    to_db = SyncState.__table__.c.updated_at.type.bind_processor(connection.dialect)
    now = dt.datetime.now(dt.UTC)
    return to_db(now) if to_db else now


def day_counts(session: Session, list_id: int, first: dt.date, last: dt.date
               ) -> dict[tuple[dt.date, str], int]:
    """(day, "subscribed" | "unsubscribed") → how many, for ``first`` ≤ day ≤ ``last``
    (what :func:`fold_history` has folded in so far)."""
    rows = session.execute(
        select(ListDayCount.day, ListDayCount.status, ListDayCount.count)
        .where(ListDayCount.list_id == list_id, ListDayCount.day >= first,
               ListDayCount.day <= last, ListDayCount.count != 0))
    return {(day, str(status)): int(n) for day, status, n in rows}
