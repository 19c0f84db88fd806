"""PostgreSQL imports: rows sent with COPY and written set-based, never one by one.

The import's guarantees themselves (consent, rejects, resuming, running twice) are
tested on both databases in tests/test_import.py; these check what is PostgreSQL's
own: no ``executemany``, a constant number of statements a chunk, index look-ups
that do not grow with the list, and the index that makes deleting a list cheap.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from newsletter.errors import NewsletterError
from newsletter.store import (
    Source,
    add_subscriber,
    bulkwrite,
    create_list,
    get_list,
    history,
    importer,
    open_database,
    set_subscriber_status,
    unsubscribe,
)
from newsletter.store.importer import import_csv
from newsletter.store.models import utcnow

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Any]:
    database = open_database(postgres_url)
    with database.transaction() as session:
        create_list(session, "weekly", "Weekly")
    try:
        yield database
    finally:
        database.dispose()


def many(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "many.csv"
    path.write_text("email,name\n" + "".join(
        f"user{i}@example.org,User {i}\n" for i in range(count)), encoding="utf-8")
    return path


def test_an_import_copies_its_rows_and_never_inserts_row_by_row(
    pg: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[tuple[str, bool]] = []
    copies: list[str] = []

    @event.listens_for(pg.engine, "before_cursor_execute")
    def seen(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append((statement, executemany))

    original_copy = psycopg.Cursor.copy

    def copy(self, statement, *args, **kwargs):  # type: ignore[no-untyped-def]
        copies.append(str(statement))
        return original_copy(self, statement, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "copy", copy)
    report = import_csv(pg.engine, many(tmp_path, 1200), "weekly", chunk_size=400)
    assert report.added == 1200
    assert len(copies) == 3 and all(c.startswith("COPY import_rows") for c in copies)
    assert not [s for s, many_rows in statements if many_rows]  # no executemany at all
    writes = [s for s, _ in statements
              if s.lstrip().upper().startswith(("INSERT", "UPDATE", "WITH"))]
    # Subscribers, memberships and history: one statement a chunk, the new ids never
    # sent to the client and back.
    assert len(writes) == 3
    assert all(w.count("INSERT INTO") == 3 and "RETURNING" not in w for w in writes)
    # A handful of statements a chunk, whatever its size (they were one per row).
    assert len(statements) < 3 * 11  # + locks of the list, the erasures (and their count)
    with pg.engine.connect() as conn:
        assert conn.execute(text(
            "select count(*) from subscriber_history where source = 'import' "
            "and detail like 'many.csv line %'")).scalar_one() == 1200


@pytest.mark.parametrize(("count", "flushes"), [(1000, 0), (1200, 1)])
def test_only_the_end_of_an_import_waits_for_the_disk(
    pg: Any, tmp_path: Path, count: int, flushes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chunks commit without waiting for the disk, but the import does not end before
    # all of them are durable: the last chunk waits, or (last chunk empty) one flush.
    modes: list[tuple[int, str]] = []  # (the chunk's first line, synchronous_commit)
    statements: list[str] = []
    chunk_of: dict[int, int] = {}  # connection -> the first line of the chunk it writes
    original = importer._apply_chunk

    def apply(conn: Any, list_id: int, slug: str, rows: Any, **kwargs: Any) -> Any:
        chunk_of[id(conn.connection.driver_connection)] = rows[0][0]
        return original(conn, list_id, slug, rows, **kwargs)

    monkeypatch.setattr(importer, "_apply_chunk", apply)

    @event.listens_for(pg.engine, "before_cursor_execute")
    def seen(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)
        if "synchronous_commit" in statement:  # two writers: in either order
            modes.append((chunk_of[id(conn.connection.driver_connection)], parameters[0]))

    report = import_csv(pg.engine, many(tmp_path, count), "weekly", chunk_size=400)
    assert report.added == count
    assert sorted(modes) == [(2, "off"), (402, "off"),
                             (802, "on" if count == 1000 else "off")]
    assert sum("pg_current_xact_id" in s for s in statements) == flushes


def test_leavers_in_the_file_stay_out_on_postgresql(pg: Any, tmp_path: Path) -> None:
    """A leaver known to the database, one only the file knows, and a bounce: none back."""
    with pg.transaction() as session:
        for email in ("left@example.org", "bounced@example.org", "stays@example.org"):
            add_subscriber(session, email, "weekly", source=Source.COMMAND)
        unsubscribe(session, "left@example.org", "weekly", source=Source.UNSUBSCRIBE_LINK)
        set_subscriber_status(session, "bounced@example.org", "bounced", source=Source.WEBHOOK)
    source = tmp_path / "leavers.csv"
    source.write_text(
        "email,name,list status\n"
        "left@example.org,Left,subscribed\n"
        "new1@example.org,New,subscribed\n"
        "bounced@example.org,Bounced,subscribed\n"
        "gone@example.org,Gone,unsubscribed\n"
        "stays@example.org,Stays,subscribed\n"
        "new2@example.org,New Too,\n", encoding="utf-8")
    report = import_csv(pg.engine, source, "weekly", chunk_size=2)
    assert (report.added, report.updated, report.unchanged, report.skipped) == (2, 1, 0, 3)
    reasons = {row.email: row.reason for row in report.skips}
    assert reasons["left@example.org"].startswith("skipped: unsubscribed from weekly")
    assert reasons["bounced@example.org"].startswith("skipped: address is bounced")
    assert reasons["gone@example.org"].startswith("recorded as unsubscribed")
    with pg.engine.connect() as conn:
        statuses = dict(conn.execute(text(
            "select s.email, m.status from memberships m join subscribers s "
            "on s.id = m.subscriber_id")).all())
    assert statuses == {
        "left@example.org": "unsubscribed", "bounced@example.org": "subscribed",
        "gone@example.org": "unsubscribed", "stays@example.org": "subscribed",
        "new1@example.org": "subscribed", "new2@example.org": "subscribed"}
    with pg.transaction() as session:
        entries = history(session, "new2@example.org")
        assert [(e.new_status, e.source, e.detail) for e in entries] == [
            ("subscribed", "import", "leavers.csv line 7")]
        assert [e.new_status for e in history(session, "left@example.org")][-1] == "unsubscribed"
    again = import_csv(pg.engine, source, "weekly", chunk_size=2)
    assert (again.added, again.updated, again.unchanged, again.skipped) == (0, 0, 3, 3)
    assert {row.email for row in again.skips} == {
        "left@example.org", "bounced@example.org", "gone@example.org"}


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found.extend(_nodes(child))
    return found


def _plan(conn: Any, statement: str, parameters: Any = ()) -> str:
    rows = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters).scalar_one()
    return json.dumps(rows)


def test_the_known_address_look_up_probes_indexes(pg: Any, tmp_path: Path) -> None:
    """Joining the staged rows reads each address's own index entries, not the whole list."""
    import_csv(pg.engine, many(tmp_path, 3000), "weekly")
    with pg.transaction() as session:
        list_id = get_list(session, "weekly").id
    rows = [(i, f"user{i}@example.org", f"user{i}@example.org", "", None, [])
            for i in range(1000)]
    captured: list[str] = []
    with pg.engine.connect() as conn, conn.begin():
        event.listen(conn, "before_cursor_execute",
                     lambda *args: captured.append(args[2]))
        found = bulkwrite._BulkWriter(conn).existing(list_id, rows)
        assert len(found) == 1000
        plan = _plan(conn, captured[-1], (list_id,))
    scanned = [node["Relation Name"] for node in _nodes(json.loads(plan)[0]["Plan"])
               if node["Node Type"] == "Seq Scan"]
    assert scanned == ["import_rows"]  # subscribers and memberships only through indexes
    assert "uq_subscribers_email_key" in plan and "pk_memberships" in plan
    assert "Hash" not in plan


def test_deleting_a_list_finds_its_history_by_index(pg: Any) -> None:
    with pg.transaction() as session:
        list_id = get_list(session, "weekly").id
    with pg.engine.connect() as conn, conn.begin():
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # tiny table: prefer any index
        plan = _plan(conn, f"DELETE FROM subscriber_history WHERE list_id = {int(list_id)}")
    assert "ix_subscriber_history_list_id" in plan


def _role_in_chunks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """session_replication_role as each chunk's transaction saw it, after its writes."""
    seen: list[str] = []
    original = importer._apply_chunk

    def apply(conn: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(conn, *args, **kwargs)
        seen.append(conn.exec_driver_sql("SHOW session_replication_role").scalar_one())
        return result

    monkeypatch.setattr(importer, "_apply_chunk", apply)
    return seen


def _orphans(pg: Any) -> int:
    with pg.engine.connect() as conn:
        return conn.execute(text(
            "SELECT (SELECT count(*) FROM memberships m LEFT JOIN subscribers s "
            "ON s.id = m.subscriber_id LEFT JOIN lists l ON l.id = m.list_id "
            "WHERE s.id IS NULL OR l.id IS NULL) + (SELECT count(*) FROM "
            "subscriber_history h LEFT JOIN subscribers s ON s.id = h.subscriber_id "
            "LEFT JOIN lists l ON l.id = h.list_id WHERE s.id IS NULL "
            "OR (h.list_id IS NOT NULL AND l.id IS NULL))")).scalar_one()


@pytest.mark.parametrize("allowed", [True, False])
def test_an_import_leaves_out_per_row_key_checks_only_when_the_role_may(
    pg: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, allowed: bool
) -> None:
    # The test role is granted SET ON PARAMETER session_replication_role (.ci/postgres);
    # a host who did not grant it gets the checked (slower) import, which works the same.
    with pg.engine.connect() as conn:
        may = bulkwrite.skips_reference_checks(conn)
    if allowed and not may:
        pytest.skip("the test role may not set session_replication_role: run .ci/postgres")
    if not allowed:
        monkeypatch.setattr(bulkwrite, "skips_reference_checks", lambda conn: False)
    roles = _role_in_chunks(monkeypatch)
    with pg.transaction() as session:
        add_subscriber(session, "user5@example.org", "weekly", source=Source.COMMAND)
        create_list(session, "monthly", "Monthly")
        add_subscriber(session, "user7@example.org", "monthly", source=Source.COMMAND)
    report = import_csv(pg.engine, many(tmp_path, 900), "weekly", chunk_size=400)
    assert (report.added, report.updated) == (899, 1)  # user7 joins, user5 gets a name
    assert roles == ["replica" if allowed else "origin"] * 3
    assert _orphans(pg) == 0
    with pg.engine.connect() as conn:  # the setting ends with each chunk's transaction
        assert conn.exec_driver_sql("SHOW session_replication_role").scalar_one() == "origin"
        assert conn.execute(text(
            "SELECT count(*) FROM memberships m JOIN lists l ON l.id = m.list_id "
            "WHERE l.slug = 'weekly'")).scalar_one() == 900


def test_an_unsaved_chunk_keeps_its_list_and_known_subscribers_from_being_deleted(
    pg: Any
) -> None:
    """What the skipped key checks guaranteed: nothing referred to can vanish meanwhile."""
    with pg.transaction() as session:
        list_id = get_list(session, "weekly").id
        create_list(session, "monthly", "Monthly")
        add_subscriber(session, "known@example.org", "monthly", source=Source.COMMAND)
    rows = [(2, "known@example.org", "known@example.org", "", None, []),
            (3, "new@example.org", "new@example.org", "", None, [])]
    with pg.engine.connect() as writer, writer.begin():
        result = bulkwrite._apply_chunk(writer, list_id, "weekly", rows, resubscribe=False,
                                        source="import", detail="f.csv", now=utcnow())
        assert result.added == 2
        with pg.engine.connect() as other:
            for statement in ("DELETE FROM lists WHERE slug = 'weekly'",
                              "DELETE FROM subscribers WHERE email = 'known@example.org'"):
                with other.begin():
                    other.exec_driver_sql("SET LOCAL lock_timeout = '300ms'")
                    with pytest.raises(OperationalError, match="lock timeout"):
                        other.exec_driver_sql(statement)
    assert _orphans(pg) == 0


def test_a_chunk_whose_list_or_subscriber_vanished_is_not_written(pg: Any) -> None:
    with pg.engine.connect() as conn, conn.begin():
        writer = bulkwrite._BulkWriter(conn)
        with pytest.raises(NewsletterError, match="list gone was deleted while the import"):
            writer.hold(987654, "gone", [])
        list_id = conn.exec_driver_sql("SELECT id FROM lists").scalar_one()
        with pytest.raises(bulkwrite._ChangedMeanwhile):
            writer.hold(list_id, "weekly", [987654])


def test_no_trigger_an_import_could_skip_fires_on_insert(pg: Any) -> None:
    # session_replication_role = replica silences ordinary triggers too. Only the
    # report counts' trigger exists on these tables, and it fires on UPDATE and DELETE,
    # which an import never does to history; a new INSERT trigger must rethink hold().
    with pg.engine.connect() as conn:
        found = conn.execute(text(
            "SELECT c.relname, t.tgname, (t.tgtype & 4) <> 0 AS on_insert FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal AND c.relname IN "
            "('lists', 'subscribers', 'memberships', 'subscriber_history') "
            "AND c.relnamespace = current_schema()::regnamespace")).all()
    assert [tuple(row) for row in found] == [
        ("subscriber_history", "list_day_counts_follow", False)]


def test_someone_erased_while_an_import_runs_is_not_added_back(pg: Any) -> None:
    from newsletter.store.erasure import count_erasures, forget, use_secret

    use_secret(pg.engine, b"test secret")
    with pg.transaction() as session:
        list_id = get_list(session, "weekly").id
        seen = count_erasures(session)  # what the import saw when it checked the file
        forget(session, "gone@example.org")  # erased after the check, before the chunk
    rows = [(2, "gone@example.org", "gone@example.org", "", None, ["gone@example.org"]),
            (3, "stays@example.org", "stays@example.org", "", None, ["stays@example.org"])]
    with pg.engine.connect() as writer, writer.begin():
        result = bulkwrite._apply_chunk(writer, list_id, "weekly", rows, resubscribe=False,
                                        source="import", detail="f.csv", now=utcnow(),
                                        erasures_seen=seen)
        assert result.added == 1
        assert [(line, reason) for line, _email, reason, _cells in result.skips] == [
            (2, importer.ERASED_REASON)]
        # Until the chunk commits, nobody can be erased: forget() waits for it.
        with pg.engine.connect() as other, other.begin():
            other.exec_driver_sql("SET LOCAL lock_timeout = '300ms'")
            with pytest.raises(OperationalError, match="lock timeout"):
                forget(Session(bind=other), "stays@example.org", secret=b"test secret")
    with pg.engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT email FROM subscribers")).scalars()) == [
            "stays@example.org"]
