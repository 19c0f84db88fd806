"""Opening the subscriber database: engine, sessions, SQLite settings, migrations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, pool
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import NewsletterError
from ..project import Project

# How long a writer waits for another writer's lock on SQLite before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalise_url(url: str) -> str:
    """Make a database URL usable: PostgreSQL URLs get the installed psycopg (3) driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _sqlite_pragmas(foreign_keys: bool):  # type: ignore[no-untyped-def]
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # safe with WAL, much faster
        cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
        cursor.close()

    return on_connect


def make_engine(url: str, *, foreign_keys: bool = True, pooled: bool = True) -> Engine:
    """A SQLAlchemy engine for ``url`` (no migrations run).

    On SQLite: WAL journal (readers never block the writer), foreign keys on,
    a 30 s busy timeout, and the database's folder is created if missing.
    """
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        shown = re.sub(r"(?<=:)[^:@/\s]+(?=@)", "***", url)  # never show a password
        raise NewsletterError(
            f"Not a database URL: {shown!r}.",
            hint="Use e.g. sqlite:///subscribers/subscribers.db or "
            "postgresql://user:password@host/dbname in NEWSLETTER_DATABASE_URL.",
        ) from None
    # Parameters are personal data (addresses, names): keep them out of errors and logs.
    kwargs: dict[str, Any] = {"hide_parameters": True}
    if not pooled:
        kwargs["poolclass"] = pool.NullPool
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas(foreign_keys))
        return engine
    if parsed.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


@dataclass
class Database:
    """An open subscriber database: ``engine`` plus a session factory.

    Typical use::

        db = open_database(project.database_url)
        with db.transaction() as session:
            add_subscriber(session, "ann@example.org", "weekly", source=Source.WEB_FORM)
    """

    url: str = field(repr=False)  # may hold a password
    engine: Engine
    sessions: sessionmaker[Session]

    def session(self) -> Session:
        """A new Session (you commit or roll back; prefer :meth:`transaction`)."""
        return self.sessions()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A Session in a transaction: committed on success, rolled back on an error."""
        with self.sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def open_database(url: str, *, migrate: bool = True) -> Database:
    """Open the database at ``url``, first migrating it to the newest schema.

    ``url`` is a SQLAlchemy URL; ``postgresql://`` is read as psycopg 3.
    Raises NewsletterError (with a hint) if the server cannot be reached.
    """
    url = normalise_url(url)
    try:
        if migrate:
            from ..migrations import upgrade

            upgrade(url)
        engine = make_engine(url)
    except OperationalError as exc:
        raise NewsletterError(
            f"Cannot open the subscriber database: {_safe_reason(exc)}",
            hint="Check NEWSLETTER_DATABASE_URL (or [database] url in newsletter.toml) and "
            "that the database server is running.",
        ) from None
    # expire_on_commit=False: objects stay readable after the transaction ends.
    return Database(url, engine, sessionmaker(engine, expire_on_commit=False))


def _safe_reason(exc: OperationalError) -> str:
    """The driver's message without the SQL or URL (which may hold a password)."""
    return str(exc.orig).strip().splitlines()[0] if exc.orig else "connection failed"


def open_project_database(project: Project) -> Database:
    """Open a project's database (:attr:`newsletter.project.Project.database_url`)."""
    return open_database(project.database_url)
