"""The reports' kept numbers (migration 0013) always equal what the raw rows say.

``list_day_counts`` (a list's joiners and leavers per day) and ``campaign_readers`` (a
campaign's unique readers) are checked against the history and reader rows after every
kind of change: new rows, rows changed, people forgotten or deleted with their rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from newsletter.store import add_subscriber, get_or_create_list, unsubscribe
from newsletter.store.database import Database
from newsletter.store.engagement import (
    counted_readers,
    forget_reader_events,
    unique_readers,
)
from newsletter.store.events import apply_batch, campaign_stats
from newsletter.store.growth import fold_history
from newsletter.store.models import (
    CampaignReaders,
    HistoryEntry,
    ListDayCount,
    Subscriber,
)

CAMPAIGN = 7


def _raw_day_counts(database: Database) -> dict[tuple[int, dt.date, str], int]:
    """Counted from subscriber_history itself, the slow way."""
    found: dict[tuple[int, dt.date, str], int] = {}
    with database.session() as session:
        for list_id, at, old, new in session.execute(
                select(HistoryEntry.list_id, HistoryEntry.at, HistoryEntry.old_status,
                       HistoryEntry.new_status)):
            if list_id is not None and new in ("subscribed", "unsubscribed") and old != new:
                key = (int(list_id), at.astimezone(dt.UTC).date(), str(new))
                found[key] = found.get(key, 0) + 1
    return found


def _kept_day_counts(database: Database) -> dict[tuple[int, dt.date, str], int]:
    fold_history(database)
    with database.session() as session:
        return {(int(a), b, str(c)): int(n) for a, b, c, n in session.execute(
            select(ListDayCount.list_id, ListDayCount.day, ListDayCount.status,
                   ListDayCount.count).where(ListDayCount.count != 0))}


def _people(database: Database, first: int, last: int) -> None:
    with database.transaction() as session:
        get_or_create_list(session, "weekly", "Weekly")
        get_or_create_list(session, "monthly", "Monthly")
        for i in range(first, last):
            add_subscriber(session, f"p{i}@example.org", "weekly" if i % 3 else "monthly")


def _move_back(session: Session, every: int, by: dt.timedelta) -> None:
    for entry in session.scalars(select(HistoryEntry).where(HistoryEntry.id % every == 0)):
        entry.at = entry.at - by


def test_the_day_counts_stay_equal_to_the_history(database: Database) -> None:
    _people(database, 0, 30)
    assert _kept_day_counts(database) == _raw_day_counts(database) != {}
    with database.transaction() as session:  # leavers, and history a day back
        for i in range(0, 30, 4):
            unsubscribe(session, f"p{i}@example.org", source="unsubscribe link")
        _move_back(session, 5, dt.timedelta(days=1))
    assert _kept_day_counts(database) == _raw_day_counts(database)
    with database.transaction() as session:  # changed after being counted
        _move_back(session, 7, dt.timedelta(days=2))
        session.execute(update(HistoryEntry).where(HistoryEntry.id == 3)
                        .values(new_status="bounced"))
    assert _kept_day_counts(database) == _raw_day_counts(database)
    with database.transaction() as session:  # people deleted with their history
        session.execute(delete(Subscriber).where(Subscriber.id.in_([2, 5, 9])))
    assert _kept_day_counts(database) == _raw_day_counts(database)
    with database.transaction() as session:  # the newest rows deleted, then new rows
        newest = session.scalar(select(func.max(HistoryEntry.subscriber_id)))
        session.execute(delete(Subscriber).where(Subscriber.id == newest))
    _people(database, 30, 40)
    assert _kept_day_counts(database) == _raw_day_counts(database)


def test_folding_twice_adds_nothing(database: Database) -> None:
    _people(database, 0, 5)
    assert fold_history(database) > 0
    assert fold_history(database) == 0
    assert sum(_kept_day_counts(database).values()) == 5


def _event(n: int, kind: str, email: str, **extra: Any) -> dict[str, Any]:
    return {"event": kind, "email": email, "sg_event_id": f"e{n}", "timestamp": 3600 * 500 + n,
            "nl_campaign": str(CAMPAIGN), **extra}


def _counted(database: Database) -> dict[str, int]:
    with database.transaction() as session:
        counts = campaign_stats(session, CAMPAIGN)
        events = sum(counts.get(kind, 0) for kind in ("open", "machine_open", "click"))
        return counted_readers(session, CAMPAIGN, events)


def _raw_readers(database: Database) -> dict[str, int]:
    with database.session() as session:
        return unique_readers(session, CAMPAIGN)


def test_the_kept_unique_readers_stay_equal_to_the_reader_rows(database: Database) -> None:
    _people(database, 0, 12)
    events = [_event(i, "open", f"p{i % 10}@example.org") for i in range(30)]
    events += [_event(100 + i, "open", f"p{i}@example.org", sg_machine_open=True)
               for i in range(4)]
    events += [_event(200 + i, "click", f"p{i % 6}@example.org",
                      url=f"https://x.org/{i % 3}") for i in range(15)]
    with database.transaction() as session:
        apply_batch(session, events)
    assert _counted(database) == _raw_readers(database) == {
        "open": 10, "machine_open": 4, "click": 6}

    with database.transaction() as session:  # kept: a wrong number would show
        session.execute(update(CampaignReaders).values(openers=999))
    assert _counted(database)["open"] == 999

    with database.transaction() as session:  # a new open makes it stale
        apply_batch(session, [_event(300, "open", "p11@example.org")])
    assert _counted(database) == _raw_readers(database)
    assert _counted(database)["open"] == 11

    with database.transaction() as session:  # forgetting someone: no new event, yet stale
        someone = session.scalar(select(Subscriber.id).where(
            Subscriber.email_key == "p1@example.org"))
        assert someone is not None and forget_reader_events(session, someone) > 0
    assert _counted(database) == _raw_readers(database)
    assert _counted(database)["click"] == 5

    with database.transaction() as session:  # deleted with their subscriber
        session.execute(delete(Subscriber).where(Subscriber.email_key == "p2@example.org"))
    assert _counted(database) == _raw_readers(database) == {
        "open": 9, "machine_open": 2, "click": 4}
