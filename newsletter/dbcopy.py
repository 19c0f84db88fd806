"""Copying a whole subscriber database to another (``newsletter db copy --to URL``).

Every table the models describe is copied, parents before children (the metadata's
dependency order), in chunks, with the same ids, in one transaction on each side:
the source is read from one snapshot and the target gets all of it or nothing.
Afterwards the row counts are compared and PostgreSQL's id sequences are moved past
the copied ids, so the next subscriber does not collide with an old one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Table, func, insert, inspect, select, text

from .dbengine import make_engine, shown_url
from .delivery import models as _campaign_tables  # noqa: F401  (registers them in Base)
from .errors import NewsletterError
from .migrations import current, head, upgrade
from .store import ratelimits as _ratelimit_tables  # noqa: F401
from .store.database import Database
from .store.models import Base

CHUNK = 5000
Progress = Callable[[str, int, int], None]  # (table, rows copied so far, rows in table)


@dataclass(frozen=True)
class CopyReport:
    """Rows copied per table, in the order they were copied."""

    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def tables() -> list[Table]:
    """Every table of the store, parents before children."""
    return list(Base.metadata.sorted_tables)


def _check_all_known(connection: Connection) -> None:
    """Refuse a source with tables the models do not describe: they would be left behind."""
    unknown = set(inspect(connection).get_table_names()) - {t.name for t in tables()}
    unknown.discard("alembic_version")
    if unknown:
        raise NewsletterError(
            f"The database has tables this version does not know: {', '.join(sorted(unknown))};"
            " they would not be copied.",
            hint="Run `newsletter db status`; a newer version of newsletter may be needed.",
        )


def _count(connection: Connection, table: Table) -> int:
    return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def _prepare_target(url: str) -> None:
    """Give an empty target the newest schema; refuse one that holds anything."""
    shown = shown_url(url)
    engine = make_engine(url, pooled=False)
    try:
        with engine.connect() as connection:
            existing = set(inspect(connection).get_table_names())
            found = current(url) if existing else None
            if existing and found != head():
                raise NewsletterError(
                    f"The target database {shown} already holds tables (schema "
                    f"{found or 'unknown'}); db copy only fills an empty database.",
                    hint="Create a new, empty database (e.g. `createdb newsletter`) and copy "
                    "into that.",
                )
            full = [t.name for t in tables() if t.name in existing and _count(connection, t)]
        if full:
            raise NewsletterError(
                f"The target database {shown} is not empty: {', '.join(full)} hold rows; "
                "db copy never mixes two databases.",
                hint="Copy into a new, empty database (e.g. `createdb newsletter`).",
            )
    finally:
        engine.dispose()
    upgrade(url)


def _copy_table(source: Connection, target: Connection, table: Table,
                progress: Progress | None) -> int:
    total = _count(source, table)
    done = 0
    if progress:
        progress(table.name, 0, total)
    order = list(table.primary_key.columns) or list(table.columns)
    result = source.execution_options(stream_results=True, yield_per=CHUNK).execute(
        select(table).order_by(*order))
    for chunk in result.partitions():
        target.execute(insert(table), [dict(row._mapping) for row in chunk])
        done += len(chunk)
        if progress:
            progress(table.name, done, total)
    return done


def _reset_sequences(target: Connection) -> None:
    """Move each PostgreSQL id sequence past the largest copied id."""
    for table in tables():
        columns = list(table.primary_key.columns)
        if len(columns) != 1 or not columns[0].autoincrement or \
                columns[0].type.python_type is not int:
            continue
        name = columns[0].name
        target.execute(text(
            f"SELECT setval(pg_get_serial_sequence(:table, :column), "
            f'COALESCE(MAX("{name}"), 1), MAX("{name}") IS NOT NULL) FROM "{table.name}"'),
            {"table": f'"{table.name}"', "column": name})


def copy_database(source: Database, to_url: str, progress: Progress | None = None) -> CopyReport:
    """Copy every row of ``source`` into the empty database at ``to_url``; check the counts.

    Raises NewsletterError if the target is not empty, or if a count differs afterwards.
    """
    _prepare_target(to_url)
    target_engine: Engine = make_engine(to_url, pooled=False)
    counts: dict[str, int] = {}
    try:
        reader = source.engine.connect()
        if reader.dialect.name == "postgresql":
            reader = reader.execution_options(isolation_level="REPEATABLE READ")
        with reader, reader.begin(), target_engine.begin() as writer:
            _check_all_known(reader)
            for table in tables():
                counts[table.name] = _copy_table(reader, writer, table, progress)
            if writer.dialect.name == "postgresql":
                _reset_sequences(writer)
            wrong = [
                f"{t.name} ({counts[t.name]} read, {_count(writer, t)} written)"
                for t in tables() if _count(writer, t) != counts[t.name]
            ]
            if wrong:
                raise NewsletterError(
                    "The copy does not match, so nothing was kept: " + ", ".join(wrong) + ".",
                    hint="Run `newsletter db copy` again; if it fails the same way, report it.",
                )
    finally:
        target_engine.dispose()
    return CopyReport(counts)
