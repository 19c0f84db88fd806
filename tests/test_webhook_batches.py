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
