"""Database migrations (Alembic), run from code: no alembic.ini needed.

Migrating is explicit: ``newsletter db upgrade`` calls :func:`upgrade` (after a
backup, under a lock). :func:`require_current` is what
:func:`newsletter.store.open_database` calls: it creates the tables of a brand-new,
empty database, and otherwise refuses a schema older or newer than this code, naming
the command that fixes it. Revision ids are explicit and sequential (each in
versions/ names its one predecessor):

- "0001" the store; "0002" campaigns and batches; "0003" webhook events;
- "0004" batch leases (owner, lease_expires_at);
- "0005" repairs double-encoded subscriber attributes;
- "0006" rate limits shared by web workers;
- "0007" per-reader opens and clicks;
- "0008" per-message records of SMTP batches;
- "0009" the web service's queue of transactional emails, and its chore leases;
- "0010" erasures: keyed hashes of forgotten addresses;
- "0011" the hosted studio's users, audit log and reviews.

For developers: ``python -m newsletter.migrations <alembic command>`` runs any
Alembic command (``current``, ``history``, ``downgrade base``, ``revision -m MSG
--rev-id 0012``) against NEWSLETTER_DATABASE_URL or the current project's database.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, event, inspect, text
from sqlalchemy.exc import DBAPIError

from ..dbengine import make_engine
from ..errors import NewsletterError

if TYPE_CHECKING:
    from alembic.config import Config

# The name on PyPI ("newsletter" there is an unrelated package); the command is `newsletter`.
DISTRIBUTION = "newsletter-toolkit"
UPGRADE_PACKAGE_HINT = f"pip install -U {DISTRIBUTION}"

MIGRATIONS_DIR = Path(__file__).resolve().parent
# Any fixed number: serialises concurrent upgrades of one PostgreSQL database.
_PG_LOCK_KEY = 7_311_991_001


# Databases this process found at head: each is checked once (see require_current).
_CURRENT: set[str] = set()
_REVISION_FILE = re.compile(r"^(\d{4})_\w+\.py$")


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config pointing at the packaged migrations (and ``url``, if given)."""
    # Alembic is imported only here and below: opening a database at head needs none
    # of it (about 0.1 s of start-up for every command that uses the store).
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions"))
    config.set_main_option("path_separator", "os")
    if url:
        # ConfigParser interpolation: a literal % must be doubled.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@cache
def head() -> str:
    """The newest revision id this version of the package knows."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"migrations have {len(heads)} heads: {heads}")
    return heads[0]


@contextmanager
def _migration_connection(url: str, *, exclusive: bool = False) -> Iterator[Connection]:
    """A connection for migrating, in one transaction, with foreign keys off on SQLite.

    SQLite batch migrations copy and drop tables; with foreign keys on, dropping a
    referenced table would cascade-delete rows. With ``exclusive`` the database is
    locked against every other writer and reader for the whole transaction: an
    advisory lock on PostgreSQL, ``BEGIN EXCLUSIVE`` on SQLite.
    """
    engine = make_engine(url, foreign_keys=False, pooled=False)
    if exclusive and engine.dialect.name == "sqlite":
        # pysqlite begins transactions lazily and weakly; take over BEGIN ourselves
        # (SQLAlchemy's documented recipe for SQLite locking modes).
        @event.listens_for(engine, "connect")
        def _no_implicit_begin(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_exclusive(connection):  # type: ignore[no-untyped-def]
            connection.exec_driver_sql("BEGIN EXCLUSIVE")
    try:
        with engine.begin() as connection:
            if exclusive and connection.dialect.name == "postgresql":
                connection.execute(text("select pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
            yield connection
    finally:
        engine.dispose()


def _newer_schema(revision: str) -> NewsletterError:
    return NewsletterError(
        f"The database's schema (revision {revision}) is newer than this version of "
        "newsletter knows: a newer version has upgraded it.",
        hint=f"Upgrade this installation too ({UPGRADE_PACKAGE_HINT}) and run the command "
        "again; do not downgrade the database.",
    )


def _run(url: str, action: str, revision: str) -> None:
    from alembic import command
    from alembic.util import CommandError

    forget(url)
    config = alembic_config(url)
    try:
        with _migration_connection(url, exclusive=True) as connection:
            found = current_on(connection)
            if found is not None and found not in known_revisions():
                raise _newer_schema(found)
            if action == "upgrade" and revision == "head" and found == head():
                return
            config.attributes["connection"] = connection
            getattr(command, action)(config, revision)
    except CommandError as exc:
        raise NewsletterError(
            f"Cannot migrate the database: {exc}. It may have been made by a newer version "
            "of newsletter.",
            hint=f"Upgrade newsletter ({UPGRADE_PACKAGE_HINT}) and run the command again.",
        ) from None


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision`` (default: newest). Safe to repeat."""
    _run(url, "upgrade", revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` ("base" drops every table)."""
    _run(url, "downgrade", revision)


@cache
def known_revisions() -> frozenset[str]:
    """Every revision id this version of the package knows."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return frozenset(rev.revision for rev in script.walk_revisions())


@cache
def newest_file_revision() -> str:
    """The newest revision by its file name in versions/ (NNNN_what.py): :func:`head`
    without loading Alembic or the migrations (a test keeps the two equal)."""
    names = (_REVISION_FILE.match(p.name) for p in (MIGRATIONS_DIR / "versions").iterdir())
    return max(match.group(1) for match in names if match)


def pending(url: str) -> list[str]:
    """Revisions :func:`upgrade` would apply, oldest first (raises if the schema is newer)."""
    from alembic.script import ScriptDirectory

    found = current(url)
    if found is not None and found not in known_revisions():
        raise _newer_schema(found)
    script = ScriptDirectory.from_config(alembic_config())
    steps = [rev.revision for rev in script.iterate_revisions(head(), found)]
    return list(reversed(steps))


def require_current(url: str, engine: Engine | None = None) -> None:
    """Make sure the database at ``url`` has the schema this code expects.

    A brand-new database (no tables at all) gets the newest schema here, so a first
    run needs no setup step. An older schema raises NewsletterError naming
    ``newsletter db upgrade``; a newer one asks to upgrade the package. Nothing
    is ever migrated implicitly.

    Once a database was found at head, this process does not ask again (until
    :func:`forget`, :func:`upgrade` or :func:`downgrade`); the check itself is one
    query, on ``engine``'s pool when given.
    """
    if url in _CURRENT:
        return
    with _checking_connection(url, engine) as connection:
        found = _version(connection)
        empty = found is None and not inspect(connection).get_table_names()
    if found is not None and found == newest_file_revision():
        _CURRENT.add(url)
        return
    if empty:
        upgrade(url)
        return
    if found is not None and found not in known_revisions():
        raise _newer_schema(found)
    raise NewsletterError(
        f"The database's schema is at revision {found or 'none'}; this version of "
        f"newsletter needs {head()}, so the database must be upgraded with "
        "`newsletter db upgrade`.",
        hint="Take a backup of the database (see docs/operations.md), then run "
        "`newsletter db upgrade`. Stop `newsletter serve` first if it runs an older version.",
    )


def forget(url: str) -> None:
    """Check the schema of the database at ``url`` again when it is next opened."""
    _CURRENT.discard(url)


@contextmanager
def _checking_connection(url: str, engine: Engine | None) -> Iterator[Connection]:
    if engine is None:
        with _migration_connection(url) as connection:
            yield connection
        return
    with engine.connect() as connection:
        yield connection
        connection.rollback()


def _version(connection: Connection) -> str | None:
    """The revision in alembic_version, in one query (None if there is none)."""
    try:
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:  # no such table: a new database, or one that was never migrated
        connection.rollback()  # PostgreSQL refuses anything more in a failed transaction
        return None


def check(url: str) -> None:
    """Raise ``alembic.util.AutogenerateDiffsDetected`` if the models and the schema differ.

    Run on a database at head: it proves the migrations create what the models describe.
    """
    from alembic import command

    config = alembic_config(url)
    with _migration_connection(url) as connection:
        config.attributes["connection"] = connection
        command.check(config)


def current_on(connection: Connection) -> str | None:
    """The revision the database behind ``connection`` is at (None if never migrated)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at (None if never migrated)."""
    with _migration_connection(url) as connection:
        return current_on(connection)
