"""Opening the subscriber database: migrations first, then an engine and its sessions.

Engines themselves (URL normalisation, SQLite settings) come from :mod:`newsletter.dbengine`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..dbengine import make_engine, normalise_url
from ..errors import NewsletterError
from ..migrations import upgrade
from ..project import Project

# make_engine and normalise_url are re-exported: callers import them from here.
__all__ = ["Database", "make_engine", "normalise_url", "open_database", "open_project_database"]


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
