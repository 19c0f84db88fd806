"""Database migrations (Alembic), run from code: no alembic.ini needed.

``upgrade(url)`` brings a fresh or older database to the newest schema; it is
what :func:`newsletter.store.open_database` calls. Revision ids are explicit and
sequential: "0001" store, "0002" campaigns and batches, "0003" webhook events.

For developers: ``python -m newsletter.migrations <alembic command>`` runs any
Alembic command (``current``, ``history``, ``downgrade base``, ``revision -m MSG
--rev-id 0004``) against NEWSLETTER_DATABASE_URL or the current project's database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, text

from ..errors import NewsletterError

MIGRATIONS_DIR = Path(__file__).resolve().parent
# Any fixed number: serialises concurrent upgrades of one PostgreSQL database.
_PG_LOCK_KEY = 7_311_991_001


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config pointing at the packaged migrations (and ``url``, if given)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions"))
    config.set_main_option("path_separator", "os")
    if url:
        # ConfigParser interpolation: a literal % must be doubled.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head() -> str:
    """The newest revision id this version of the package knows."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"migrations have {len(heads)} heads: {heads}")
    return heads[0]


@contextmanager
def _migration_connection(url: str) -> Iterator[Connection]:
    """A connection for migrating, in one transaction, with foreign keys off on SQLite.

    SQLite batch migrations copy and drop tables; with foreign keys on, dropping a
    referenced table would cascade-delete rows.
    """
    from ..store.database import make_engine

    engine = make_engine(url, foreign_keys=False, pooled=False)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("select pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
            yield connection
    finally:
        engine.dispose()


def _run(url: str, action: str, revision: str) -> None:
    config = alembic_config(url)
    try:
        with _migration_connection(url) as connection:
            if action == "upgrade" and revision == "head" and current_on(connection) == head():
                return
            config.attributes["connection"] = connection
            getattr(command, action)(config, revision)
    except CommandError as exc:
        raise NewsletterError(
            f"Cannot migrate the database: {exc}. It may have been made by a newer version "
            "of newsletter.",
            hint="Upgrade newsletter (pip install -U newsletter) and run the command again.",
        ) from None


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision`` (default: newest). Safe to repeat."""
    _run(url, "upgrade", revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` ("base" drops every table)."""
    _run(url, "downgrade", revision)


def current_on(connection: Connection) -> str | None:
    """The revision the database behind ``connection`` is at (None if never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at (None if never migrated)."""
    with _migration_connection(url) as connection:
        return current_on(connection)
