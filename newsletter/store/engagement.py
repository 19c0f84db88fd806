"""What readers did with a campaign: per-reader opens and clicks, clicked links, events per hour.

Written by the event webhook (:func:`newsletter.store.events.apply_batch` calls
:func:`record_engagement` with a batch's opens and clicks) and read by the reports
(:mod:`newsletter.reports`). Three tables (migration 0007), and a fourth (0012) that
keeps each campaign's unique readers once counted (:func:`counted_readers`):

- ``reader_events``: one row per reader, campaign, kind (open, machine_open, click)
  and clicked link, with the first time and how many times; the number of rows of a
  kind is the number of unique readers. Not written with ``privacy = "aggregate"``.
- ``campaign_links``: each link clicked in a campaign (as SendGrid reports it) and its
  total clicks; the reports map links to the issue's stories.
- ``campaign_hour_counts``: opens, machine opens and clicks per hour.

Writes are plain driver SQL with ``executemany``: a webhook batch must cost
milliseconds (bench/webhook.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from .models import (
    CampaignHourCount,
    CampaignLink,
    CampaignReaders,
    Membership,
    ReaderEvent,
    Subscriber,
)

OPEN, MACHINE_OPEN, CLICK = "open", "machine_open", "click"
KINDS = (OPEN, MACHINE_OPEN, CLICK)
PRIVACY_FULL, PRIVACY_AGGREGATE = "full", "aggregate"
MAX_URL = 2000  # column width of campaign_links.url
_CHUNK = 400  # rows per multi-row VALUES / IN list, well under SQLite's parameter limit


@dataclass(frozen=True)
class Engagement:
    """One open or click, as the webhook saw it."""

    campaign_id: int
    kind: str  # open | machine_open | click
    email: str
    timestamp: int  # seconds since 1970, UTC
    url: str = ""  # clicks only


# ---------------------------------------------------------------- writing


def _mark(session: Session) -> str:
    return "?" if session.connection().dialect.paramstyle == "qmark" else "%s"


def _to_db(session: Session) -> Any:
    """The bind processor of a UTC time column (SQLite stores naive text)."""
    dialect = session.connection().dialect
    return ReaderEvent.__table__.c.first_at.type.bind_processor(dialect)


def _link_ids(session: Session, clicks: Counter[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Upsert the clicked links' totals; (campaign, url) → link id."""
    connection = session.connection()
    mark = _mark(session)
    found: dict[tuple[int, str], int] = {}
    items = sorted(clicks.items())
    for start in range(0, len(items), _CHUNK):
        chunk = items[start:start + _CHUNK]
        values = ", ".join([f"({mark}, {mark}, {mark})"] * len(chunk))
        sql = (f"INSERT INTO campaign_links (campaign_id, url, clicks) VALUES {values} "
               "ON CONFLICT (campaign_id, url) DO UPDATE "
               "SET clicks = campaign_links.clicks + excluded.clicks "
               "RETURNING id, campaign_id, url")
        parameters = tuple(v for (campaign, url), n in chunk for v in (campaign, url, n))
        for link_id, campaign, url in connection.exec_driver_sql(sql, parameters):
            found[(int(campaign), str(url))] = int(link_id)
    return found


def subscriber_ids(session: Session, emails: Iterable[str]) -> dict[str, int]:
    """Lower-cased address → subscriber id, for the addresses the store knows."""
    connection = session.connection()
    mark = _mark(session)
    keys = sorted({email.lower() for email in emails})
    found: dict[str, int] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start:start + _CHUNK]
        sql = (f"SELECT email_key, id FROM subscribers WHERE email_key IN "
               f"({', '.join([mark] * len(chunk))})")
        found.update((str(k), int(i)) for k, i in connection.exec_driver_sql(sql, tuple(chunk)))
    return found


def record_engagement(
    session: Session, events: Sequence[Engagement], *, privacy: str = PRIVACY_FULL
) -> None:
    """Add a batch's opens and clicks to the hourly counts, the links and (unless
    ``privacy`` is "aggregate") the per-reader rows; in the caller's transaction."""
    if not events:
        return
    connection = session.connection()
    mark = _mark(session)
    hours: Counter[tuple[int, str, int]] = Counter()
    clicks: Counter[tuple[int, str]] = Counter()
    for event in events:
        hours[(event.campaign_id, event.kind, event.timestamp // 3600)] += 1
        if event.kind == CLICK:
            clicks[(event.campaign_id, event.url[:MAX_URL])] += 1
    connection.exec_driver_sql(
        f"INSERT INTO campaign_hour_counts (campaign_id, kind, hour, count) "
        f"VALUES ({mark}, {mark}, {mark}, {mark}) ON CONFLICT (campaign_id, kind, hour) "
        "DO UPDATE SET count = campaign_hour_counts.count + excluded.count",
        [(c, k, h, n) for (c, k, h), n in sorted(hours.items())],
    )
    links = _link_ids(session, clicks) if clicks else {}
    if privacy == PRIVACY_AGGREGATE:
        return
    if connection.dialect.name == "postgresql":
        _insert_readers_by_address(connection, events, links)
        return
    ids = subscriber_ids(session, (event.email for event in events))
    rows: dict[tuple[int, str, int, int], list[int]] = {}
    for event in events:
        subscriber = ids.get(event.email.lower())
        if subscriber is None:
            continue  # not (or no longer) in the store: nothing to attach it to
        link = links[(event.campaign_id, event.url[:MAX_URL])] if event.kind == CLICK else 0
        row = rows.get(key := (event.campaign_id, event.kind, link, subscriber))
        if row is None:
            rows[key] = [event.timestamp, 1]
        else:
            row[0] = min(row[0], event.timestamp)
            row[1] += 1
    if not rows:
        return
    to_db = _to_db(session)

    stamps: dict[int, Any] = {}  # many events of a batch share a second

    def when(timestamp: int) -> Any:
        found = stamps.get(timestamp)
        if found is None:
            moment = datetime.fromtimestamp(timestamp, UTC)
            found = stamps[timestamp] = to_db(moment) if to_db else moment
        return found

    values = [(c, k, link, s, when(first), n)
              for (c, k, link, s), (first, n) in sorted(rows.items())]
    connection.exec_driver_sql(
        _READERS_INSERT + f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark}, {mark}) "
        + _readers_upsert("min"), values)


_READERS_INSERT = ("INSERT INTO reader_events (campaign_id, kind, link_id, subscriber_id, "
                   "first_at, count) ")


def _readers_upsert(earliest: str) -> str:
    return ("ON CONFLICT (campaign_id, kind, link_id, subscriber_id) DO UPDATE SET "
            "count = reader_events.count + excluded.count, "
            f"first_at = {earliest}(reader_events.first_at, excluded.first_at)")


def _insert_readers_by_address(connection: Any, events: Sequence[Engagement],
                               links: dict[tuple[int, str], int]) -> None:
    """PostgreSQL: the batch's reader rows in one statement over arrays, the addresses
    turned into subscriber ids by a join (unknown ones drop out), so the ids never
    travel to the client and back (that look-up was a statement of its own)."""
    rows: dict[tuple[int, str, int, str], list[int]] = {}
    for event in events:
        link = links[(event.campaign_id, event.url[:MAX_URL])] if event.kind == CLICK else 0
        row = rows.get(key := (event.campaign_id, event.kind, link, event.email.lower()))
        if row is None:
            rows[key] = [event.timestamp, 1]
        else:
            row[0] = min(row[0], event.timestamp)
            row[1] += 1
    values = [(c, k, link, address, datetime.fromtimestamp(first, UTC), n)
              for (c, k, link, address), (first, n) in sorted(rows.items())]
    # Keyed by address, and one address is one subscriber: no row is upserted twice in
    # the statement (PostgreSQL refuses that).
    connection.exec_driver_sql(
        _READERS_INSERT + "SELECT r.c, r.k, r.l, s.id, r.f, r.n FROM unnest(%s::integer[], "
        "%s::text[], %s::integer[], %s::text[], %s::timestamptz[], %s::integer[]) "
        "AS r(c, k, l, a, f, n) JOIN subscribers s ON s.email_key = r.a "
        + _readers_upsert("least"),
        tuple(list(column) for column in zip(*values, strict=True)),
    )


def forget_reader_events(session: Session, subscriber_id: int) -> int:
    """Delete everything recorded about what one reader opened and clicked; how many rows."""
    outcome = session.execute(delete(ReaderEvent).where(ReaderEvent.subscriber_id == subscriber_id))
    return int(outcome.rowcount or 0)  # type: ignore[attr-defined]


# ---------------------------------------------------------------- reading


def unique_readers(session: Session, campaign_id: int) -> dict[str, int]:
    """How many different readers opened, were machine-opened and clicked: {kind: n}."""
    found = {kind: 0 for kind in KINDS}
    rows = session.execute(
        select(ReaderEvent.kind, func.count())
        .where(ReaderEvent.campaign_id == campaign_id, ReaderEvent.kind != CLICK)
        .group_by(ReaderEvent.kind)
    )
    found.update({str(kind): int(n) for kind, n in rows})
    found[CLICK] = int(session.scalar(
        select(func.count(func.distinct(ReaderEvent.subscriber_id)))
        .where(ReaderEvent.campaign_id == campaign_id, ReaderEvent.kind == CLICK)
    ) or 0)
    return found


def counted_readers(session: Session, campaign_id: int, events: int) -> dict[str, int]:
    """:func:`unique_readers`, reused from ``campaign_readers`` while still true.

    ``events`` is the campaign's opens, machine opens and clicks so far (its counts in
    ``campaign_event_counts``), read before this call: every new reader row comes with a
    new count, and every deleted one bumps ``deletions`` (a trigger), so a stored count
    whose ``events`` and ``deletions`` are unchanged is what counting again would give.
    Both are read before counting, so a change made meanwhile leaves the stored numbers
    stale (counted again next time), never wrong. Writes in the caller's transaction.
    """
    stored = session.execute(
        select(CampaignReaders.events, CampaignReaders.deletions,
               CampaignReaders.deletions_seen, CampaignReaders.openers,
               CampaignReaders.machine_openers, CampaignReaders.clickers)
        .where(CampaignReaders.campaign_id == campaign_id)).first()
    if stored is not None and stored.events == events and \
            stored.deletions == stored.deletions_seen:
        return {OPEN: stored.openers, MACHINE_OPEN: stored.machine_openers,
                CLICK: stored.clickers}
    seen = stored.deletions if stored is not None else 0
    found = unique_readers(session, campaign_id)
    mark = _mark(session)
    session.connection().exec_driver_sql(
        "INSERT INTO campaign_readers (campaign_id, events, deletions, deletions_seen, openers, "
        f"machine_openers, clickers) VALUES ({', '.join([mark] * 7)}) "
        "ON CONFLICT (campaign_id) DO UPDATE SET events = excluded.events, "
        "deletions_seen = excluded.deletions_seen, openers = excluded.openers, "
        "machine_openers = excluded.machine_openers, clickers = excluded.clickers",
        (campaign_id, events, seen, seen, found[OPEN], found[MACHINE_OPEN], found[CLICK]))
    return found


def has_reader_rows(session: Session, campaign_id: int) -> bool:
    """True if any per-reader row exists for the campaign (False under privacy = aggregate)."""
    return session.scalar(
        select(ReaderEvent.campaign_id).where(ReaderEvent.campaign_id == campaign_id).limit(1)
    ) is not None


@dataclass(frozen=True)
class LinkClicks:
    """One clicked link of a campaign: total clicks and (if kept) unique clickers."""

    id: int
    url: str
    clicks: int
    clickers: int


def campaign_links(session: Session, campaign_id: int) -> list[LinkClicks]:
    """Every clicked link of a campaign, most clicked first."""
    clickers = dict(session.execute(
        select(ReaderEvent.link_id, func.count())
        .where(ReaderEvent.campaign_id == campaign_id, ReaderEvent.kind == CLICK)
        .group_by(ReaderEvent.link_id)
    ).all())
    rows = session.execute(
        select(CampaignLink.id, CampaignLink.url, CampaignLink.clicks)
        .where(CampaignLink.campaign_id == campaign_id)
        .order_by(CampaignLink.clicks.desc(), CampaignLink.id)
    )
    return [LinkClicks(int(i), str(u), int(n), int(clickers.get(i, 0))) for i, u, n in rows]


def unique_clickers(session: Session, campaign_id: int, link_ids: Sequence[int]) -> int:
    """How many different readers clicked any of ``link_ids`` (one story's links)."""
    if not link_ids:
        return 0
    return int(session.scalar(
        select(func.count(func.distinct(ReaderEvent.subscriber_id))).where(
            ReaderEvent.campaign_id == campaign_id, ReaderEvent.kind == CLICK,
            ReaderEvent.link_id.in_(list(link_ids)))
    ) or 0)


def hourly(session: Session, campaign_id: int) -> dict[str, dict[int, int]]:
    """{kind: {hour since 1970: events}} of one campaign."""
    found: dict[str, dict[int, int]] = {kind: {} for kind in KINDS}
    rows = session.execute(
        select(CampaignHourCount.kind, CampaignHourCount.hour, CampaignHourCount.count)
        .where(CampaignHourCount.campaign_id == campaign_id)
    )
    for kind, hour, count in rows:
        found.setdefault(str(kind), {})[int(hour)] = int(count)
    return found


def engaged_subscribers(session: Session, campaign_ids: Sequence[int]) -> set[int]:
    """Readers who opened (as a person) or clicked anything in these campaigns."""
    if not campaign_ids:
        return set()
    rows = session.execute(
        select(ReaderEvent.subscriber_id).distinct().where(
            ReaderEvent.campaign_id.in_(list(campaign_ids)),
            ReaderEvent.kind.in_([OPEN, CLICK]))
    )
    return {int(subscriber) for (subscriber,) in rows}


def active_member_ids(session: Session, list_id: int) -> set[int]:
    """Subscribed, active members of one list (those who would get the next issue)."""
    rows = session.execute(
        select(Membership.subscriber_id).join(Subscriber)
        .where(Membership.list_id == list_id, Membership.status == "subscribed",
               Subscriber.status == "active")
    )
    return {int(subscriber) for (subscriber,) in rows}
