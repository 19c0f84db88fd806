"""Webhook batches write the same rows on SQLite and PostgreSQL, in set-based statements.

On PostgreSQL the event ids and the per-reader rows go in as arrays (``unnest``): one
statement a batch, where row-by-row ``executemany`` made ingest the slow path.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, text

from newsletter.store import Source, add_subscriber, create_list
from newsletter.store.events import apply_batch

T0 = 1_790_000_000


def _event(number: int, email: str, kind: str, when: int, **extra: Any) -> dict[str, Any]:
    return {"sg_event_id": f"id-{number}", "email": email, "event": kind, "timestamp": when,
            "nl_campaign": "7", **extra}


BATCH = [
    _event(1, "ann@example.org", "open", T0),
    _event(2, "ann@example.org", "open", T0 - 3600),  # earlier: becomes first_at
    _event(3, "Ann@Example.org", "click", T0, url="https://news.example.org/a"),
    _event(4, "bob@example.org", "click", T0, url="https://news.example.org/a"),
    _event(5, "bob@example.org", "click", T0 + 5, url="https://news.example.org/b"),
    _event(6, "bob@example.org", "open", T0, sg_machine_open=True),
    _event(7, "stranger@example.org", "open", T0),  # not in the store: counted only
    _event(8, "ann@example.org", "delivered", T0),
    _event(1, "ann@example.org", "open", T0),  # the same id again in the batch
]


def test_a_batch_and_its_retry_write_the_same_rows_on_both_databases(database) -> None:
    with database.transaction() as session:
        create_list(session, "weekly", "Weekly")
        for email in ("ann@example.org", "bob@example.org"):
            add_subscriber(session, email, "weekly", source=Source.COMMAND)
    statements: list[tuple[str, bool]] = []

    @event.listens_for(database.engine, "before_cursor_execute")
    def seen(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append((statement, executemany))

    with database.transaction() as session:
        first = apply_batch(session, BATCH)
    with database.transaction() as session:
        again = apply_batch(session, BATCH[:4])  # SendGrid retries part of it
    assert (first.received, first.new, first.duplicates) == (9, 8, 1)
    assert (again.new, again.duplicates) == (0, 4)
    with database.engine.connect() as conn:
        readers = sorted(tuple(row) for row in conn.execute(text(
            "select s.email, r.kind, coalesce(l.url, ''), r.count, r.first_at "
            "from reader_events r join subscribers s on s.id = r.subscriber_id "
            "left join campaign_links l on l.id = r.link_id")))
        claimed = conn.execute(text("select count(*) from webhook_events")).scalar_one()
    moments = {row[:4]: row[4] for row in readers}
    assert list(moments) == [
        ("ann@example.org", "click", "https://news.example.org/a", 1),
        ("ann@example.org", "open", "", 2),
        ("bob@example.org", "click", "https://news.example.org/a", 1),
        ("bob@example.org", "click", "https://news.example.org/b", 1),
        ("bob@example.org", "machine_open", "", 1),
    ]
    first_open = moments[("ann@example.org", "open", "", 2)]
    if isinstance(first_open, str):  # SQLite hands back text
        first_open = datetime.fromisoformat(first_open)
    assert first_open.replace(tzinfo=UTC) == datetime.fromtimestamp(T0 - 3600, UTC)
    assert claimed == 8
    if database.engine.dialect.name == "postgresql":
        many = [s for s, executemany in statements if executemany and (
            "webhook_events" in s or "reader_events" in s)]
        assert many == []
        writes = [s for s, _ in statements if s.startswith(
            ("INSERT INTO webhook_events", "INSERT INTO reader_events"))]
        assert len(writes) == 3  # ids twice (batch, retry), reader rows once
        # The readers' addresses become ids inside that statement, not in a look-up.
        assert not [s for s, _ in statements if s.startswith("SELECT email_key, id")]


def _history(database) -> list[tuple]:  # type: ignore[no-untyped-def]
    with database.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(
            "select s.email_key, l.slug, h.old_status, h.new_status, h.source "
            "from subscriber_history h join subscribers s on s.id = h.subscriber_id "
            "left join lists l on l.id = h.list_id where h.source = 'webhook' "
            "order by h.id"))]


def test_status_changes_of_a_batch_follow_the_rule_event_by_event(database) -> None:
    from newsletter.store import Subscriber, find_subscriber, forget, use_secret

    use_secret(database.engine, b"s" * 32)
    with database.transaction() as session:
        for slug in ("weekly", "alerts"):
            create_list(session, slug, slug.title())
        for email in ("ann@example.org", "bob@example.org", "cy@example.org"):
            add_subscriber(session, email, "weekly", source=Source.COMMAND)
            add_subscriber(session, email, "alerts", source=Source.COMMAND)
        forget(session, "gone@example.org", secret=b"s" * 32)
    batch = [
        _event(1, "New@Example.org", "bounce", T0 + 1, type="bounce"),  # unknown: added, bounced
        _event(2, "new@example.org", "spamreport", T0 + 2),  # then complained
        _event(3, "new@example.org", "bounce", T0 + 3, type="bounce"),  # never softened
        _event(4, "gone@example.org", "bounce", T0 + 4, type="bounce"),  # erased: not stored
        _event(5, "not an address", "spamreport", T0 + 5),
        _event(6, "ann@example.org", "unsubscribe", T0 + 6, nl_list="alerts"),
        _event(7, "ann@example.org", "unsubscribe", T0 + 7, nl_list="alerts"),  # already
        _event(8, "bob@example.org", "group_unsubscribe", T0 + 8),  # no list: every list
        _event(9, "cy@example.org", "unsubscribe", T0 + 9, nl_list="nosuchlist"),
        _event(10, "cy@example.org", "bounce", T0 + 10, type="blocked"),  # a block changes nothing
        _event(11, "Cy@example.org", "dropped", T0 + 11, reason="Bounced Address"),
        _event(12, "nobody@example.org", "unsubscribe", T0 + 12),  # unknown: nothing to leave
    ]
    with database.transaction() as session:
        cy = find_subscriber(session, "cy@example.org")
        assert isinstance(cy, Subscriber) and cy.status == "active"  # loaded in the session
        result = apply_batch(session, batch)
        assert cy.status == "bounced"  # the loaded object reads the new state
    assert result.changes == 5
    assert _history(database) == [
        ("new@example.org", None, None, "bounced", "webhook"),
        ("new@example.org", None, "bounced", "complained", "webhook"),
        ("ann@example.org", "alerts", "subscribed", "unsubscribed", "webhook"),
        ("bob@example.org", "weekly", "subscribed", "unsubscribed", "webhook"),
        ("bob@example.org", "alerts", "subscribed", "unsubscribed", "webhook"),
        ("cy@example.org", None, "active", "bounced", "webhook"),
    ]
    with database.engine.connect() as conn:
        rows = sorted(tuple(row) for row in conn.execute(text(
            "select email, status from subscribers")))
        left = sorted(tuple(row) for row in conn.execute(text(
            "select s.email_key, l.slug from memberships m join subscribers s "
            "on s.id = m.subscriber_id join lists l on l.id = m.list_id "
            "where m.status = 'unsubscribed' and m.how = 'webhook'")))
    assert rows == [("New@example.org", "complained"), ("ann@example.org", "active"),
                    ("bob@example.org", "active"), ("cy@example.org", "bounced")]
    assert left == [("ann@example.org", "alerts"), ("bob@example.org", "alerts"),
                    ("bob@example.org", "weekly")]
