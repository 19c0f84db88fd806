"""What a SendGrid event does to the store: status changes, dedupe, per-campaign counts.

The one place that answers "what does this event do to a subscriber": the event
webhook (:mod:`newsletter.web`) and ``newsletter subscribers sync``
(:mod:`newsletter.sync`) both apply events through :func:`apply_action`, so they
treat an event the same way. Automatic changes never soften a status: a complaint
is not turned back into a bounce.

One webhook batch is applied in the caller's transaction (:func:`apply_batch`):

1. the batch's ``sg_event_id``s are inserted with ``INSERT ... ON CONFLICT DO NOTHING
   RETURNING``, so only events never seen before go on (a retried batch changes nothing,
   and two concurrent deliveries of one event cannot both apply it);
2. counts are added up in memory and written with one upsert per (campaign, event);
3. the few events that change someone's status are applied together
   (:func:`apply_actions`): the people and their lists are loaded in one query each,
   the same rule decides each event in turn, and the changes and their history rows are
   written with ``executemany``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, inspect, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..emails import InvalidEmail, normalise_email
from ..errors import NewsletterError
from ..project import Project
from .consent import erased
from .database import open_project_database
from .engagement import CLICK, PRIVACY_FULL, Engagement, record_engagement
from .models import (
    CampaignEventCount,
    HistoryEntry,
    MailingList,
    Membership,
    MembershipStatus,
    Source,
    Subscriber,
    SubscriberStatus,
    WebhookEvent,
    email_key,
    table,
    utcnow,
)

# SendGrid's event names; anything else is counted as ignored, never stored.
KNOWN_EVENTS = frozenset({
    "processed", "dropped", "delivered", "deferred", "bounce", "open", "click",
    "spamreport", "unsubscribe", "group_unsubscribe", "group_resubscribe",
})
MACHINE_OPEN = "machine_open"
BLOCKED = "blocked"
MAX_EVENT_ID = 100  # column width of webhook_events.sg_event_id
_ID_CHUNK = 400  # rows per INSERT: 2 parameters each, well under SQLite's limit

@dataclass
class BatchResult:
    """What one batch did: events received, new, duplicates, ignored, status changes."""

    received: int = 0
    new: int = 0
    duplicates: int = 0
    ignored: int = 0
    changes: int = 0
    counted: Counter[tuple[int, str]] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, int]:
        """The figures as JSON-ready numbers (the webhook answers with these)."""
        return {
            "received": self.received, "new": self.new, "duplicates": self.duplicates,
            "ignored": self.ignored, "changes": self.changes,
        }


# ---------------------------------------------------------------- one event


def _campaign(event: dict[str, Any]) -> int | None:
    value: Any = event.get("nl_campaign")
    try:
        number = int(value)  # custom_args arrive as strings
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**31 else None


def _counted_as(event: dict[str, Any]) -> str | None:
    name = event.get("event")
    if name not in KNOWN_EVENTS:
        return None
    if name == "open" and event.get("sg_machine_open") in (True, "true", "True", 1):
        return MACHINE_OPEN  # Apple Mail Privacy Protection prefetch, not a reader
    if name == "bounce" and event.get("type") == "blocked":
        return BLOCKED
    return str(name)


def status_action(event: dict[str, Any]) -> tuple[str, str | None] | None:
    """What an event does to its recipient: ("bounced"|"complained"|"unsubscribed", list).

    None for events that change nothing (delivered, open, a block, ...). The list is
    the campaign's (custom arg ``nl_list``) for unsubscribes; None means every list.
    """
    name = event.get("event")
    list_slug = event.get("nl_list") if isinstance(event.get("nl_list"), str) else None
    if name == "bounce":
        # "blocked" is a temporary refusal (e.g. a spam filter), not a dead address.
        return ("bounced", None) if event.get("type", "bounce") == "bounce" else None
    if name == "spamreport":
        return ("complained", None)
    if name in ("unsubscribe", "group_unsubscribe"):
        return ("unsubscribed", list_slug)
    if name == "dropped":
        reason = str(event.get("reason", "")).lower()
        if "bounce" in reason:
            return ("bounced", None)
        if "spam" in reason:
            return ("complained", None)
        if "unsubscribe" in reason:
            return ("unsubscribed", list_slug)
    return None


def _detail(event: dict[str, Any]) -> str:
    parts = [f"SendGrid {event.get('event')}"]
    for key in ("type", "reason", "status"):
        if event.get(key):
            parts.append(f"{key}: {event[key]}")
    if _campaign(event) is not None:
        parts.append(f"campaign {_campaign(event)}")
    return "; ".join(parts)[:500]


# ---------------------------------------------------------------- applying an action


# How serious a subscriber-wide status is: automatic changes never go down this scale.
_RANK = {
    SubscriberStatus.ACTIVE.value: 0,
    SubscriberStatus.BOUNCED.value: 1,
    SubscriberStatus.COMPLAINED.value: 2,
    SubscriberStatus.BLOCKLISTED.value: 3,
}


Action = tuple[str, str | None]  # ("bounced"|"complained"|"unsubscribed", list slug or None)
_UNSUBSCRIBED = MembershipStatus.UNSUBSCRIBED.value
_SUBSCRIBERS, _MEMBERSHIPS, _HISTORY = table(Subscriber), table(Membership), table(HistoryEntry)


@dataclass
class _Person:
    """A subscriber as the batch sees it: loaded, or added by this batch (``id`` None)."""

    id: int | None
    status: str
    email: str
    memberships: dict[int, str] = field(default_factory=dict)  # list id → status
    changed: bool = False


def apply_actions(
    session: Session, changes: Sequence[tuple[str, Action, str]], *, source: Source
) -> int:
    """Apply each (email, action, detail) in turn, as the rule below says; how many changed.

    The rule: "bounced" and "complained" set the subscriber-wide status unless that
    would be a downgrade (an unknown address is added with it, unless erased on
    request); "unsubscribed" leaves the list (None: every list) of a known address and
    a known list. Not an email address: nothing. Each change writes a history row.
    One query loads the people, one their lists; the writes are ``executemany``.
    """
    session.flush()  # pending ORM changes first: the writes below go round the session
    connection = session.connection()
    addresses = [_address(email) for email, _action, _detail in changes]
    people = _load_people(connection, {email_key(a) for a in addresses if a},
                          any(kind == _UNSUBSCRIBED for _e, (kind, _s), _d in changes))
    slugs = {slug for _e, (kind, slug), _d in changes if kind == _UNSUBSCRIBED and slug}
    lists = {slug: number for slug, number in connection.execute(
        select(MailingList.slug, MailingList.id).where(MailingList.slug.in_(sorted(slugs))))
    } if slugs else {}
    history: list[tuple[_Person, int | None, str | None, str, str]] = []
    changed = 0
    for address, (_email, (kind, slug), detail) in zip(addresses, changes, strict=True):
        person = people.get(email_key(address)) if address else None
        if kind == _UNSUBSCRIBED:
            if person is None or (slug is not None and slug not in lists):
                continue
            left = [list_id for list_id, status in person.memberships.items()
                    if status != _UNSUBSCRIBED and (slug is None or lists[slug] == list_id)]
            for list_id in left:
                history.append((person, list_id, person.memberships[list_id], kind, detail))
                person.memberships[list_id] = _UNSUBSCRIBED
            changed += bool(left)
            continue
        status = SubscriberStatus(kind).value
        if address is None:
            continue  # not an email address: nothing to apply it to
        if person is None:
            if _erased(session, address):
                continue  # erased on request: never stored again
            person = people[email_key(address)] = _Person(None, status, address, changed=True)
            history.append((person, None, None, status, detail))
        elif _RANK.get(person.status, 0) >= _RANK[status]:
            continue  # never softened: a complaint is not turned back into a bounce
        else:
            history.append((person, None, person.status, status, detail))
            person.status, person.changed = status, True
        changed += 1
    if history:
        _write(session, people, history, source)
    return changed


def _erased(session: Session, address: str) -> bool:
    """True if ``address`` may not be stored: erased on request, or no secret to tell."""
    try:
        return erased(session, address)
    except NewsletterError:  # erasures exist but the secret was not given: add nobody
        return True


def _address(email: str) -> str | None:
    try:
        return normalise_email(email)
    except InvalidEmail:
        return None


def _load_people(connection: Connection, keys: set[str], lists: bool) -> dict[str, _Person]:
    """email key → the stored subscriber, with their memberships if ``lists``."""
    people: dict[str, _Person] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), _ID_CHUNK):
        rows = connection.execute(
            select(Subscriber.email_key, Subscriber.id, Subscriber.status, Subscriber.email)
            .where(Subscriber.email_key.in_(ordered[start:start + _ID_CHUNK])))
        people.update((key, _Person(number, status, email)) for key, number, status, email in rows)
    if lists and people:
        by_id = {person.id: person for person in people.values() if person.id is not None}
        ids = sorted(by_id)
        for start in range(0, len(ids), _ID_CHUNK):
            members = connection.execute(
                select(Membership.subscriber_id, Membership.list_id, Membership.status)
                .where(Membership.subscriber_id.in_(ids[start:start + _ID_CHUNK]))
                .order_by(Membership.subscriber_id, Membership.list_id))
            for subscriber_id, list_id, status in members:
                by_id[subscriber_id].memberships[list_id] = status
    return people


def _write(session: Session, people: dict[str, _Person],
           history: list[tuple[_Person, int | None, str | None, str, str]], source: Source) -> None:
    """Write a batch's changes: new and changed subscribers, memberships, history rows."""
    connection = session.connection()
    now, how = utcnow(), source.value
    updated = [{"i": p.id, "s": p.status, "t": now} for p in people.values()
               if p.changed and p.id is not None]
    new = [p for p in people.values() if p.id is None]
    if new:
        rows = connection.execute(
            insert(_SUBSCRIBERS).returning(_SUBSCRIBERS.c.id, _SUBSCRIBERS.c.email_key),
            [{"email": p.email, "email_key": email_key(p.email), "name": "", "attributes": {},
              "status": p.status, "status_changed_at": now, "created_at": now} for p in new])
        for subscriber_id, key in rows:
            people[key].id = subscriber_id
    if updated:
        connection.execute(update(_SUBSCRIBERS).where(_SUBSCRIBERS.c.id == bindparam("i"))
                           .values(status=bindparam("s"), status_changed_at=bindparam("t")),
                           updated)
    left = [{"i": p.id, "l": list_id, "t": now} for p, list_id, _o, _n, _d in history
            if list_id is not None]
    if left:
        connection.execute(update(_MEMBERSHIPS).where(
            _MEMBERSHIPS.c.subscriber_id == bindparam("i"),
            _MEMBERSHIPS.c.list_id == bindparam("l"))
            .values(status=_UNSUBSCRIBED, changed_at=bindparam("t"), how=how), left)
    connection.execute(insert(_HISTORY), [
        {"subscriber_id": p.id, "list_id": list_id, "at": now, "old_status": old,
         "new_status": new_status, "source": how, "detail": detail}
        for p, list_id, old, new_status, detail in history])
    _expire(session, {p.id for p, *_rest in history})


def _expire(session: Session, ids: set[int | None]) -> None:
    """Let objects of these subscribers loaded in ``session`` read the new state."""
    for loaded in list(session.identity_map.values()):
        identity = inspect(loaded).identity
        if isinstance(loaded, Subscriber | Membership) and identity and identity[0] in ids:
            session.expire(loaded)


def mark_status(
    session: Session, email: str, status: SubscriberStatus, *, source: Source, detail: str
) -> bool:
    """Set a subscriber-wide status unless it would be a downgrade; True if it changed.

    Unknown addresses are added with that status, so a later import skips them too.
    """
    return apply_action(session, email, (status.value, None), source=source, detail=detail)


def apply_action(
    session: Session, email: str, action: Action, *, source: Source, detail: str
) -> bool:
    """Apply ("bounced"|"complained"|"unsubscribed", list slug or None) to ``email``.

    Returns True if anything changed (see :func:`apply_actions`).
    """
    return apply_actions(session, [(email, action, detail)], source=source) > 0


# ---------------------------------------------------------------- a batch


def _insert_dialect(session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert


def claim_event_ids(session: Session, ids: Sequence[str]) -> set[str]:
    """Record ``ids`` as seen; return those that were not seen before (race-free).

    Plain driver SQL: SQLAlchemy compiling a 400-row VALUES clause costs more than
    SQLite running it.
    """
    connection = session.connection()
    dialect = connection.dialect
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    to_db = WebhookEvent.__table__.c.received_at.type.bind_processor(dialect)
    now = to_db(utcnow()) if to_db else utcnow()
    if dialect.name == "postgresql":  # one array parameter: no statement to parse per size
        return {row[0] for row in connection.exec_driver_sql(
            "INSERT INTO webhook_events (sg_event_id, received_at) SELECT unnest(%s::text[]), "
            "%s ON CONFLICT (sg_event_id) DO NOTHING RETURNING sg_event_id", (list(ids), now))}
    new: set[str] = set()
    for start in range(0, len(ids), _ID_CHUNK):
        chunk = ids[start:start + _ID_CHUNK]
        values = ", ".join([f"({mark}, {mark})"] * len(chunk))
        sql = (f"INSERT INTO webhook_events (sg_event_id, received_at) VALUES {values} "
               "ON CONFLICT (sg_event_id) DO NOTHING RETURNING sg_event_id")
        parameters = tuple(item for event_id in chunk for item in (event_id, now))
        new.update(row[0] for row in connection.exec_driver_sql(sql, parameters))
    return new


def add_counts(session: Session, counts: Counter[tuple[int, str]]) -> None:
    """Add ``counts`` ((campaign id, event) → n) to the per-campaign counters."""
    if not counts:
        return
    insert = _insert_dialect(session)
    table = CampaignEventCount.__table__
    statement = insert(table).values([
        {"campaign_id": campaign, "event": name, "count": n}
        for (campaign, name), n in sorted(counts.items())
    ])
    statement = statement.on_conflict_do_update(
        index_elements=["campaign_id", "event"],
        set_={"count": table.c.count + statement.excluded.count},
    )
    session.execute(statement)


def _engagement(event: dict[str, Any], campaign: int, counted: str) -> Engagement | None:
    """An open, machine open or click as a row for the reader tables; None for others."""
    if counted not in ("open", MACHINE_OPEN, CLICK):
        return None
    email, when = event.get("email"), event.get("timestamp")
    if not isinstance(email, str) or not isinstance(when, int | float) or when < 0:
        return None
    url = event.get("url") if counted == CLICK else ""
    if not isinstance(url, str) or (counted == CLICK and not url):
        return None
    return Engagement(campaign, counted, email, int(when), url)


def apply_batch(
    session: Session, events: Iterable[Any], *, privacy: str = PRIVACY_FULL
) -> BatchResult:
    """Apply one webhook batch in ``session``'s transaction (the caller commits).

    Events without an ``sg_event_id`` or that are not objects are ignored; an id
    seen before (in this batch or any earlier one) is a duplicate and changes nothing.
    Opens and clicks also go to the reader tables (:mod:`.engagement`); with
    ``privacy="aggregate"`` (newsletter.toml) only as counts, with no per-reader rows.
    """
    result = BatchResult()
    fresh: dict[str, dict[str, Any]] = {}
    for event in events:
        result.received += 1
        event_id = event.get("sg_event_id") if isinstance(event, dict) else None
        if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_EVENT_ID:
            result.ignored += 1
        elif event_id in fresh:
            result.duplicates += 1
        else:
            fresh[event_id] = event
    new_ids = claim_event_ids(session, list(fresh)) if fresh else set()
    result.new = len(new_ids)
    result.duplicates += len(fresh) - len(new_ids)

    actions: list[tuple[float, str, tuple[str, str | None], dict[str, Any]]] = []
    engaged: list[Engagement] = []
    for event_id in new_ids:
        event = fresh[event_id]
        campaign, counted = _campaign(event), _counted_as(event)
        if counted is None:
            result.ignored += 1
            continue
        if campaign is not None:
            result.counted[(campaign, counted)] += 1
            if (row := _engagement(event, campaign, counted)) is not None:
                engaged.append(row)
        action = status_action(event)
        email = event.get("email")
        if action is not None and isinstance(email, str):
            when = event.get("timestamp")
            actions.append((when if isinstance(when, int | float) else 0, email, action, event))
    add_counts(session, result.counted)
    record_engagement(session, engaged, privacy=privacy)
    if actions:
        actions.sort(key=lambda a: a[0])
        result.changes = apply_actions(session, [(email, action, _detail(event))
                                                 for _when, email, action, event in actions],
                                       source=Source.WEBHOOK)
    return result


def campaign_stats(session: Session, campaign_id: int) -> dict[str, int]:
    """Event counts of one campaign: {"delivered": n, "open": n, "machine_open": n, ...}."""
    rows = session.execute(
        select(CampaignEventCount.event, CampaignEventCount.count)
        .where(CampaignEventCount.campaign_id == campaign_id)
    )
    return {name: int(count) for name, count in rows}


# What `newsletter status` shows: column → the counted events it adds up.
ENGAGEMENT = {
    "Delivered": ("delivered",),
    "Opened": ("open",),
    "Machine opens": (MACHINE_OPEN,),
    "Clicks": ("click",),
    "Bounced": ("bounce",),
    "Spam reports": ("spamreport",),
    "Unsubscribed": ("unsubscribe", "group_unsubscribe"),
}


def engagement(project: Project, campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """Webhook event counts per campaign, for `newsletter status` (campaigns with none left out)."""
    if not campaign_ids:
        return {}
    database = open_project_database(project)
    try:
        with database.session() as session:
            rows = session.execute(
                select(CampaignEventCount.campaign_id, CampaignEventCount.event,
                       CampaignEventCount.count)
                .where(CampaignEventCount.campaign_id.in_(campaign_ids))
            )
            found: dict[int, dict[str, int]] = {}
            for campaign_id, name, count in rows:
                found.setdefault(int(campaign_id), {})[name] = int(count)
            return found
    finally:
        database.dispose()


def prune_event_ids(session: Session, older_than_days: int = 30) -> int:
    """Forget event ids older than this (SendGrid retries for 72 hours); returns how many."""
    cutoff = utcnow() - timedelta(days=older_than_days)
    outcome = session.execute(delete(WebhookEvent).where(WebhookEvent.received_at < cutoff))
    return int(outcome.rowcount or 0)  # type: ignore[attr-defined]
