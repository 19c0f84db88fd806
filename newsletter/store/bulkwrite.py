"""Saving one chunk of an import: each row decided against the database, then bulk SQL.

Runs in the import's writer thread, inside the chunk's transaction (see .importer).
The consent rule decides whether a known address may be added back; new addresses,
memberships and history rows are written with a few set-based statements
(:class:`_BulkWriter`), without SQLAlchemy's per-row processing: on SQLite over one
JSON parameter, on PostgreSQL over rows sent with ``COPY`` and id arrays (``unnest``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, update
from sqlalchemy.exc import DBAPIError

from ..errors import NewsletterError
from .consent import ERASED_REASON, Refusal, refusal
from .erasure import count_erasures, erased_checker, hold_erasures
from .models import (
    HistoryEntry,
    Membership,
    MembershipStatus,
    Subscriber,
    SubscriberStatus,
    table,
)

_SUBSCRIBERS = table(Subscriber)
_MEMBERSHIPS = table(Membership)
_HISTORY = table(HistoryEntry)
_SUBSCRIBED = MembershipStatus.SUBSCRIBED.value
_UNSUBSCRIBED = MembershipStatus.UNSUBSCRIBED.value
_ACTIVE = SubscriberStatus.ACTIVE.value
_STAGE = "import_rows"  # PostgreSQL: the chunk's rows, a temporary table


# One checked row: (line, email, email_key, name, attributes or None, original cells)
_Row = tuple[int, str, str, str, dict[str, str] | None, list[str]]


@dataclass
class _ChunkResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skips: list[tuple[int, str, str, list[str]]] = field(default_factory=list)


class _ChangedMeanwhile(Exception):
    """Another writer changed rows of this chunk between our look-up and our write."""

    def __str__(self) -> str:  # the import's error message quotes it to staff
        return ("other changes to the same subscribers (the studio, a sign-up, an "
                "unsubscribe) kept coming while this part of the file was saved")


def _as_mapping(value: Any) -> dict[str, Any]:
    """Stored attributes as a dict, whatever the driver returned.

    SQLite hands back JSON text, PostgreSQL a dict; a row damaged by an old bug
    holds JSON text inside a JSON string, decoded here until it is an object.
    """
    for _ in range(10):
        if not isinstance(value, str):
            break
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _skip_reason(why: Refusal, subscriber_status: str, list_slug: str) -> str:
    if why is Refusal.SUPPRESSED:
        return f"skipped: address is {subscriber_status}; imports never add it back"
    return f"skipped: unsubscribed from {list_slug}; --resubscribe adds them back"


class _BulkWriter:
    """The hot statements of an import, without SQLAlchemy's per-row processing.

    On SQLite each insert is one set-based ``INSERT ... SELECT FROM json_each(?)``
    over the whole chunk, passed as a single JSON parameter: about half the CPU of
    ``executemany``, and SQLite does the work without holding Python's GIL.

    On PostgreSQL the chunk's rows go into a temporary table with one ``COPY``
    (:meth:`existing`); known addresses are found by joining it, and every write is
    one ``INSERT/UPDATE ... SELECT`` from it or from ``unnest`` of id arrays: a
    handful of statements a chunk, where ``executemany`` cost psycopg's client work
    for every row of three tables. Constant values (times, source, list) are
    converted once per chunk with the columns' own type processors.
    """

    def __init__(self, conn: Connection, *, wait_for_disk: bool = True) -> None:
        self.conn = conn
        self.wait_for_disk = wait_for_disk
        self.dialect = conn.dialect
        self.sqlite = self.dialect.name == "sqlite"
        self.mark = "?" if self.dialect.paramstyle == "qmark" else "%s"
        self._json = getattr(self.dialect, "_json_serializer", None) or json.dumps

    @staticmethod
    def _keys_match(column: str) -> tuple[str, Any]:
        """SQLite: SQL matching ``column`` against a list of keys, passed as one parameter."""
        return f"{column} IN (SELECT value FROM json_each(?))", _json_text

    def existing(
        self, list_id: int, rows: list[_Row]
    ) -> dict[str, tuple[int, str, Any, str, str | None]]:
        """email_key -> (id, name, attributes, status, status on this list or None).

        On PostgreSQL this first stages ``rows`` (see :meth:`_stage`), which the
        inserts below read from.
        """
        if self.sqlite:
            match, param = self._keys_match("s.email_key")
            found = self.conn.exec_driver_sql(
                "SELECT s.email_key, s.id, s.name, s.attributes, s.status, m.status "
                "FROM subscribers s LEFT JOIN memberships m "
                f"ON m.subscriber_id = s.id AND m.list_id = ? WHERE {match}",
                (list_id, param([row[2] for row in rows])),
            )
        else:
            self._stage(rows)
            # The membership as a subquery: one primary-key probe per known address
            # (as a join, PostgreSQL may read every membership of the list instead).
            found = self.conn.exec_driver_sql(
                "SELECT s.email_key, s.id, s.name, s.attributes, s.status, (SELECT m.status "
                "FROM memberships m WHERE m.subscriber_id = s.id AND m.list_id = %s) "
                f"FROM {_STAGE} st JOIN subscribers s ON s.email_key = st.email_key",
                (list_id,),
            )
        return {row[0]: tuple(row[1:]) for row in found}

    def _stage(self, rows: list[_Row]) -> None:
        """COPY the chunk into a temporary table, dropped when the transaction ends."""
        # Until the commit: probe the indexes once per staged row (with the statistics
        # of a table still growing, PostgreSQL otherwise hashes all subscribers and
        # memberships of the list for every chunk, a cost that grows with the list),
        # and no notice when the staging table already exists. Without wait_for_disk
        # the commit returns before its WAL is flushed (see importer._Run.submit).
        # With the right (see skips_reference_checks), the foreign keys' per-row checks
        # are left out: hold() takes the locks they would have taken, once per chunk.
        self.conn.exec_driver_sql(
            "SELECT set_config('enable_hashjoin', 'off', true), "
            "set_config('enable_mergejoin', 'off', true), "
            "set_config('client_min_messages', 'warning', true), "
            "set_config('synchronous_commit', %s, true)"
            + (", set_config('session_replication_role', 'replica', true)"
               if skips_reference_checks(self.conn) else ""),
            ("on" if self.wait_for_disk else "off",))
        # Made once per connection and emptied at every commit: creating and dropping
        # it with each chunk cost catalog writes (and their invalidations) every time.
        self.conn.exec_driver_sql(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} (line integer, email text, "
            "email_key text, name text, attributes text) ON COMMIT DELETE ROWS")
        dumps = self._json
        # The driver's own connection: SQLAlchemy has no COPY. Same transaction.
        driver = self.conn.connection.driver_connection
        statement = f"COPY {_STAGE} FROM STDIN"
        failure = self.dialect.loaded_dbapi.Error
        try:
            with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
                for line, email, key, name, attributes, _cells in rows:
                    copy.write_row(
                        (line, email, key, name, dumps(attributes) if attributes else "{}"))
        except failure as exc:  # as SQLAlchemy reports the other statements' errors
            raise DBAPIError.instance(statement, None, exc, failure) from exc

    def hold(self, list_id: int, list_slug: str, subscriber_ids: list[int]) -> None:
        """PostgreSQL: lock the list and the known subscribers the chunk will refer to.

        The locks a foreign key's check takes on each row it checks (``FOR KEY SHARE``),
        taken once per chunk: until the commit, nobody can delete the list or one of
        these subscribers, so no membership or history row is ever left pointing at
        nothing. Raises _ChangedMeanwhile when a subscriber is already gone (the chunk
        is decided again), NewsletterError when the list is.
        """
        if not self.conn.exec_driver_sql(
                "SELECT 1 FROM lists WHERE id = %s FOR KEY SHARE", (list_id,)).first():
            raise NewsletterError(
                f"The list {list_slug} was deleted while the import was running.",
                hint=f"Make it again (`newsletter lists create {list_slug}`), then run the "
                "same import again.")
        if subscriber_ids and self.conn.exec_driver_sql(
            "SELECT count(*) FROM (SELECT 1 FROM subscribers WHERE id = ANY(%s) "
            "FOR KEY SHARE) held", (subscriber_ids,),
        ).scalar_one() != len(set(subscriber_ids)):
            raise _ChangedMeanwhile

    def _value(self, column: Any, value: Any) -> Any:
        processor = column.type.dialect_impl(self.dialect).bind_processor(self.dialect)
        return processor(value) if processor else value

    def add_to_list(
        self, list_id: int, new_lines: list[int], joins: list[tuple[int, int]],
        source: str, detail: str, now: datetime,
    ) -> None:
        """PostgreSQL: add the new subscribers (staged, at ``new_lines``) and subscribe
        them and ``joins`` (subscriber id, line) to the list, with their history.

        One statement: the new ids never travel to the client and back. Raises
        _ChangedMeanwhile unless the staged rows not in the database are exactly
        ``new_lines`` (another writer added or removed one since existing() looked).
        """
        when = self._value(_SUBSCRIBERS.c.created_at, now)
        added = self.conn.exec_driver_sql(
            # Ids drawn in line order; the foreign keys of memberships and history are
            # checked at the end of the statement, when the new subscribers exist.
            "WITH new AS MATERIALIZED (SELECT nextval(q.seq) AS id, st.* FROM (SELECT * "
            f"FROM {_STAGE} st WHERE NOT EXISTS (SELECT 1 FROM subscribers s "
            "WHERE s.email_key = st.email_key) ORDER BY st.line) st CROSS JOIN (SELECT "
            "pg_get_serial_sequence('subscribers', 'id')::regclass AS seq) q), "
            "s AS (INSERT INTO subscribers (id, email, email_key, name, attributes, "
            "status, status_changed_at, created_at) SELECT id, email, email_key, name, "
            "attributes::json, %s, %s, %s FROM new), "
            "j AS (SELECT id, line FROM new UNION ALL "
            "SELECT * FROM unnest(%s::integer[], %s::integer[])), "
            "m AS (INSERT INTO memberships (subscriber_id, list_id, status, changed_at, "
            "how, created_at) SELECT id, %s, %s, %s, %s, %s FROM j), "
            "h AS (INSERT INTO subscriber_history (subscriber_id, list_id, at, old_status, "
            "new_status, source, detail) SELECT id, %s, %s, NULL, %s, %s, %s::text || line "
            "FROM j) SELECT array_agg(line ORDER BY line) FROM new",
            (_ACTIVE, when, when, [sid for sid, _ in joins], [line for _, line in joins],
             list_id, _SUBSCRIBED, when, source, when,
             list_id, when, _SUBSCRIBED, source, f"{detail} line "),
        ).scalar_one()
        if (added or []) != new_lines:
            raise _ChangedMeanwhile

    def insert_subscribers(
        self, rows: list[tuple[str, str, str, dict[str, str] | None]], now: datetime
    ) -> list[int]:
        """SQLite: insert new subscribers; returns their ids in the order given."""
        when = self._value(_SUBSCRIBERS.c.created_at, now)
        # SQLite gives new rows max(id)+1, +2, ... in order, and holds the write lock
        # from the insert on; the check below catches a writer slipping in before it.
        before = self.conn.exec_driver_sql(
            "SELECT coalesce(max(id), 0) FROM subscribers").scalar_one()
        self.conn.exec_driver_sql(
            "INSERT INTO subscribers (email, email_key, name, attributes, status, "
            "status_changed_at, created_at) SELECT json_extract(value, '$[0]'), "
            "json_extract(value, '$[1]'), json_extract(value, '$[2]'), "
            "coalesce(json_extract(value, '$[3]'), '{}'), ?, ?, ? FROM json_each(?)",
            (_ACTIVE, when, when, _json_text(rows)),
        )
        last = self.conn.exec_driver_sql(
            "SELECT id FROM subscribers WHERE email_key = ?", (rows[-1][1],)
        ).scalar_one()
        if last == before + len(rows):
            return list(range(before + 1, last + 1))
        return self._ids(rows)

    def _ids(self, rows: list[tuple[str, str, str, Any]]) -> list[int]:
        match, param = self._keys_match("email_key")
        ids: dict[str, int] = dict(self.conn.exec_driver_sql(
            f"SELECT email_key, id FROM subscribers WHERE {match}", (param([r[1] for r in rows]),)
        ).all())
        return [ids[row[1]] for row in rows]

    def insert_memberships(
        self, list_id: int, subscriber_ids: list[int], source: str, now: datetime
    ) -> None:
        """SQLite: subscribe these subscribers to the list."""
        when = self._value(_MEMBERSHIPS.c.changed_at, now)
        self.conn.exec_driver_sql(
            "INSERT INTO memberships (subscriber_id, list_id, status, changed_at, how, "
            "created_at) SELECT value, ?, ?, ?, ?, ? FROM json_each(?)",
            (list_id, _SUBSCRIBED, when, source, when, _json_text(subscriber_ids)),
        )

    def rejoin(
        self, list_id: int, rows: list[tuple[int, str, int]], source: str, now: datetime
    ) -> int:
        """Subscribe (subscriber id, old status, line) again if still at that old status.

        Returns how many memberships changed: fewer than ``rows`` means someone else
        changed one since existing() looked.
        """
        if self.sqlite:
            return self.conn.execute(
                update(_MEMBERSHIPS)
                .where(_MEMBERSHIPS.c.subscriber_id == bindparam("sid"),
                       _MEMBERSHIPS.c.list_id == list_id,
                       _MEMBERSHIPS.c.status == bindparam("old"))
                .values(status=_SUBSCRIBED, changed_at=now, how=source),
                [{"sid": sid, "old": old} for sid, old, _line in rows],
            ).rowcount
        return self.conn.exec_driver_sql(
            "UPDATE memberships m SET status = %s, changed_at = %s, how = %s "
            "FROM unnest(%s::integer[], %s::text[]) AS r(sid, old) "
            "WHERE m.subscriber_id = r.sid AND m.list_id = %s AND m.status = r.old",
            (_SUBSCRIBED, self._value(_MEMBERSHIPS.c.changed_at, now), source,
             [row[0] for row in rows], [row[1] for row in rows], list_id),
        ).rowcount

    def update_profiles(self, updates: list[tuple[int, str, dict[str, Any]]]) -> None:
        """Set (subscriber id, name, attributes) of known subscribers."""
        if self.sqlite:
            self.conn.execute(
                update(_SUBSCRIBERS)
                .where(_SUBSCRIBERS.c.id == bindparam("sid"))
                .values(name=bindparam("new_name"), attributes=bindparam("new_attributes")),
                [{"sid": sid, "new_name": name, "new_attributes": attributes}
                 for sid, name, attributes in updates],
            )
            return
        self.conn.exec_driver_sql(
            "UPDATE subscribers s SET name = r.name, attributes = r.attributes::json "
            "FROM unnest(%s::integer[], %s::text[], %s::text[]) AS r(sid, name, attributes) "
            "WHERE s.id = r.sid",
            ([row[0] for row in updates], [row[1] for row in updates],
             [self._json(row[2]) for row in updates]),
        )

    def insert_history(
        self, list_id: int, rows: list[tuple[int, str | None, int]], source: str,
        detail: str, now: datetime,
    ) -> None:
        """Record (subscriber id, old status, line) -> subscribed, detail "FILE line N"."""
        when = self._value(_HISTORY.c.at, now)
        prefix = f"{detail} line "
        if self.sqlite:
            self.conn.exec_driver_sql(
                "INSERT INTO subscriber_history (subscriber_id, list_id, at, old_status, "
                "new_status, source, detail) SELECT json_extract(value, '$[0]'), ?, ?, "
                "json_extract(value, '$[1]'), ?, ?, ? || json_extract(value, '$[2]') "
                "FROM json_each(?)",
                (list_id, when, _SUBSCRIBED, source, prefix, _json_text(rows)),
            )
            return
        self.conn.exec_driver_sql(
            "INSERT INTO subscriber_history (subscriber_id, list_id, at, old_status, "
            "new_status, source, detail) SELECT r.sid, %s, %s, r.old, %s, %s, "
            "%s::text || r.line FROM unnest(%s::integer[], %s::text[], %s::integer[]) "
            "AS r(sid, old, line)",
            (list_id, when, _SUBSCRIBED, source, prefix, [row[0] for row in rows],
             [row[1] for row in rows], [row[2] for row in rows]),
        )


def _not_erased_since(conn: Connection, rows: list[_Row], seen: int,
                      result: _ChunkResult) -> list[_Row]:
    """``rows`` without addresses erased since the import checked them (then skipped).

    Holds the erasures until the chunk commits, so none can be erased meanwhile.
    """
    hold_erasures(conn)
    if count_erasures(conn) == seen:
        return rows
    was_erased = erased_checker(conn)
    if was_erased is None:
        return rows
    kept = []
    for row in rows:
        if was_erased(row[1]):
            result.skips.append((row[0], row[1], ERASED_REASON, row[5]))
        else:
            kept.append(row)
    return kept


def skips_reference_checks(conn: Connection) -> bool:
    """PostgreSQL: may this role leave out the foreign keys' per-row checks in an import?

    Only a superuser, or a role granted ``SET ON PARAMETER session_replication_role``
    (PostgreSQL 15 and later; see docs/operations.md), may. Those checks are about half
    of the server's work in an import; the import takes their locks itself (hold()).
    Asked once a chunk (one small query), so a grant or revoke counts at once.
    """
    version = conn.dialect.server_version_info or (0,)
    granted = (" OR has_parameter_privilege('session_replication_role', 'SET')"
               if version >= (15,) else "")
    return bool(conn.exec_driver_sql(
        f"SELECT current_setting('is_superuser') = 'on'{granted}").scalar())


def _json_text(value: Any) -> str:
    """One JSON parameter for SQLite's json_each (non-ASCII kept as is)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _apply_chunk(
    conn: Connection,
    list_id: int,
    list_slug: str,
    rows: list[_Row],
    *,
    resubscribe: bool,
    source: str,
    detail: str,
    now: datetime,
    wait_for_disk: bool = True,
    erasures_seen: int | None = None,
) -> _ChunkResult:
    """Write one chunk of checked rows (the caller holds the transaction).

    On PostgreSQL, ``wait_for_disk=False`` lets the commit return before its WAL is
    flushed to disk. ``erasures_seen``: how many erasures there were when the rows were
    checked; if someone was erased since, their rows are skipped here (the consent rule).
    """
    writer = _BulkWriter(conn, wait_for_disk=wait_for_disk)
    result = _ChunkResult()
    if erasures_seen is not None:
        rows = _not_erased_since(conn, rows, erasures_seen, result)
    found = writer.existing(list_id, rows)
    new_subscribers: list[tuple[str, str, str, dict[str, str] | None]] = []
    new_lines: list[int] = []
    joins: list[tuple[int, int]] = []  # (subscriber id, line): new to this list
    rejoins: list[tuple[int, str, int]] = []  # (subscriber id, old status, line)
    profile_updates: list[tuple[int, str, dict[str, Any]]] = []
    for line, email, key, name, attributes, cells in rows:
        existing = found.get(key)
        if existing is None:
            new_subscribers.append((email, key, name, attributes))
            new_lines.append(line)
            result.added += 1
            continue
        sid, old_name, old_attributes, status, list_status = existing
        # The consent rule: never add back a leaver (unless resubscribe) or a bounce.
        if why := refusal(status, list_status, resubscribe=resubscribe):
            result.skips.append((line, email, _skip_reason(why, status, list_slug), cells))
            continue
        profile_changed = bool(name) and name != old_name
        new_attributes: dict[str, Any] = {}
        if attributes or profile_changed:
            # Always write a dict: the raw value (JSON text on SQLite) would be stored
            # as a JSON string holding JSON, and break the next import.
            new_attributes = old = _as_mapping(old_attributes)
            if attributes:
                new_attributes = {**old, **attributes}
                profile_changed = profile_changed or new_attributes != old
        if profile_changed:
            profile_updates.append((sid, name or old_name, new_attributes))
        if list_status is None:
            joins.append((sid, line))
            result.added += 1
        elif list_status != _SUBSCRIBED:
            rejoins.append((sid, list_status, line))
            result.updated += 1
        elif profile_changed:
            result.updated += 1
        else:
            result.unchanged += 1

    history: list[tuple[int, str | None, int]] = []
    if not writer.sqlite:
        writer.hold(list_id, list_slug, [sid for sid, _line in joins]
                    + [sid for sid, _old, _line in rejoins])
        if new_lines or joins:
            writer.add_to_list(list_id, new_lines, joins, source, detail, now)
    else:
        if new_subscribers:
            ids = writer.insert_subscribers(new_subscribers, now)
            joins.extend(zip(ids, new_lines, strict=True))
        if joins:
            writer.insert_memberships(list_id, [sid for sid, _line in joins], source, now)
        history = [(sid, None, line) for sid, line in joins]
    if rejoins and writer.rejoin(list_id, rejoins, source, now) != len(rejoins):
        # Someone changed one of these memberships since we looked (e.g. unsubscribed
        # on the web): roll back and decide again from fresh data.
        raise _ChangedMeanwhile

    if profile_updates:
        writer.update_profiles(profile_updates)
    history += rejoins
    if history:
        writer.insert_history(list_id, history, source, detail, now)
    return result
