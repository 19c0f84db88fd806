"""Opening the subscriber database: which one, its schema checked, then an engine and sessions.

Which database a project uses (:func:`project_database`): NEWSLETTER_DATABASE_URL, else
``[database] url`` in newsletter.toml (its password from NEWSLETTER_DATABASE_PASSWORD or
PostgreSQL's ``.pgpass``, never from the file), else SQLite in subscribers/. A project
once used with PostgreSQL never falls back to that SQLite file: the choice is
remembered in ``.newsletter/database.json``.

Engines themselves (URL normalisation, SQLite settings) come from :mod:`newsletter.dbengine`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..announce import announce_to, listener
from ..dbengine import make_engine, normalise_url, shown_url, supported_url
from ..errors import NewsletterError
from ..migrations import forget, require_current
from ..project import DATABASE_ENV, Project

# make_engine and normalise_url are re-exported: callers import them from here.
__all__ = [
    "PASSWORD_ENV", "Database", "DatabaseChoice", "announce_to", "describe_url", "make_engine",
    "normalise_url", "open_database", "open_project_database", "project_database",
]

PASSWORD_ENV = "NEWSLETTER_DATABASE_PASSWORD"
STATE_DIR = ".newsletter"  # the project's own state, never published; git-ignored
_RECORD = "database.json"
_FROM_FILE = "newsletter.toml [database] url"
_DEFAULT = "the default SQLite file"

@dataclass(frozen=True)
class DatabaseChoice:
    """The database a project uses and where that was said."""

    url: str = field(repr=False)  # may hold a password
    source: str  # NEWSLETTER_DATABASE_URL, newsletter.toml, or the default

    @property
    def shown(self) -> str:
        """Which database this is, in a few words, without a password."""
        return describe_url(self.url)

    @property
    def backend(self) -> str:
        """"sqlite" or "postgresql"."""
        return supported_url(self.url).get_backend_name()


@dataclass
class Database:
    """An open subscriber database: ``engine`` plus a session factory.

    Typical use::

        db = open_project_database(project)
        with db.transaction() as session:
            add_subscriber(session, "ann@example.org", "weekly", source=Source.WEB_FORM)
    """

    url: str = field(repr=False)  # may hold a password
    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def label(self) -> str:
        """Which database this is, in a few words and without a password, for people and logs."""
        return describe_url(self.url)

    def session(self) -> Session:
        """A new Session (you commit or roll back; prefer :meth:`transaction`)."""
        return self.sessions()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A Session in a transaction: committed on success, rolled back on an error."""
        with self.sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        """Close every pooled connection (the next open checks the schema again)."""
        self.engine.dispose()
        forget(self.url)


def describe_url(url: str) -> str:
    """"PostgreSQL news on db.example.org:5432 as news" or "SQLite file x.db in /folder"."""
    parsed = supported_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(str(parsed.database))
        return f"SQLite file {path.name} in {path.parent}"
    port = f":{parsed.port}" if parsed.port else ""
    user = f" as {parsed.username}" if parsed.username else ""
    return f"PostgreSQL {parsed.database} on {parsed.host or 'localhost'}{port}{user}"


def open_database(url: str, *, check_schema: bool = True) -> Database:
    """Open the database at ``url``, checking that its schema is the one this code knows.

    A brand-new, empty database gets the newest schema; an older or newer one raises
    NewsletterError naming the command to run (migrating is `newsletter db upgrade`).
    ``url`` is a SQLAlchemy URL; ``postgresql://`` is read as psycopg 3.
    Raises NewsletterError (with a hint) if the server cannot be reached.
    """
    url = normalise_url(url)
    try:
        engine = make_engine(url)
        if check_schema:
            require_current(url, engine)
    except OperationalError as exc:
        raise NewsletterError(
            f"Cannot open the subscriber database {shown_url(url)}: {_safe_reason(exc)}",
            hint="Check NEWSLETTER_DATABASE_URL (or [database] url in newsletter.toml), the "
            f"password ({PASSWORD_ENV} or ~/.pgpass) and that the database server is running.",
        ) from None
    # expire_on_commit=False: objects stay readable after the transaction ends.
    return Database(url, engine, sessionmaker(engine, expire_on_commit=False))


def _safe_reason(exc: OperationalError) -> str:
    """The driver's message without the SQL or URL (which may hold a password)."""
    return str(exc.orig).strip().splitlines()[0] if exc.orig else "connection failed"


def _from_file(project: Project, url: str) -> str:
    """[database] url: no password allowed; a relative SQLite path is the project's."""
    parsed = supported_url(url)
    if parsed.password:
        raise NewsletterError(
            "newsletter.toml: [database] url holds a password; passwords never go in "
            "newsletter.toml (it is shared and kept in git).",
            hint=f"Remove the password from the address (keep user@host), and set {PASSWORD_ENV} "
            "in the environment, or put it in ~/.pgpass.",
        )
    if parsed.get_backend_name() == "sqlite" and not Path(str(parsed.database)).is_absolute():
        return parsed.set(database=str(project.root / str(parsed.database))).render_as_string(
            hide_password=False)
    return url


def project_database(project: Project) -> DatabaseChoice:
    """The database ``project`` uses: NEWSLETTER_DATABASE_URL, [database] url, or SQLite.

    Raises NewsletterError if the URL is unusable, if newsletter.toml holds a password,
    or if a project that has used PostgreSQL would otherwise fall back to SQLite.
    """
    if os.environ.get(DATABASE_ENV):
        choice = DatabaseChoice(normalise_url(os.environ[DATABASE_ENV]), DATABASE_ENV)
    elif project.config.database_url:
        choice = DatabaseChoice(
            normalise_url(_from_file(project, project.config.database_url)), _FROM_FILE)
    else:
        default = project.subscribers_dir / "subscribers.db"
        choice = DatabaseChoice(f"sqlite:///{default}", _DEFAULT)
    password = os.environ.get(PASSWORD_ENV)
    parsed = supported_url(choice.url)
    if password and parsed.get_backend_name() == "postgresql" and not parsed.password:
        url = parsed.set(password=password).render_as_string(hide_password=False)
        choice = DatabaseChoice(url, choice.source)
    _remember(project, choice)
    return choice


def _remember(project: Project, choice: DatabaseChoice) -> None:
    """Record a PostgreSQL choice; refuse the SQLite default after one was recorded."""
    record = project.root / STATE_DIR / _RECORD
    if choice.source == _DEFAULT:
        try:
            known = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(known, dict) and known.get("backend") == "postgresql":
            raise NewsletterError(
                f"This project uses the database {known.get('shown', 'on PostgreSQL')}, but "
                f"neither {DATABASE_ENV} nor [database] url in newsletter.toml is set here, so "
                "this command would use the SQLite file in subscribers/ instead; it does not.",
                hint=f"Put [database] url in newsletter.toml (the password in {PASSWORD_ENV} "
                f"or ~/.pgpass), or set {DATABASE_ENV} for this command too: cron and systemd "
                f"start with an empty environment. If the project really moved back to "
                f"SQLite, delete {record}.",
            )
        return
    if choice.backend != "postgresql":
        return
    wanted = {"backend": "postgresql", "shown": choice.shown}
    try:
        if json.loads(record.read_text(encoding="utf-8")) == wanted:
            return
    except (OSError, ValueError):
        pass
    try:
        record.parent.mkdir(exist_ok=True)
        record.write_text(json.dumps(wanted) + "\n", encoding="utf-8")
    except OSError:
        pass  # a read-only project folder: the record is a safeguard, not a requirement


def open_project_database(project: Project) -> Database:
    """Open a project's database (see :func:`project_database`).

    If :func:`announce_to` was given a callback, it hears which database this is
    when the first write happens (readers stay quiet: their output may be data).
    """
    choice = project_database(project)
    database = open_database(choice.url)
    callback = listener()
    if callback is not None:
        _announce_first_write(database.engine, f"Database: {database.label}", callback)
    return database


def _announce_first_write(engine: Engine, line: str, callback: Callable[[str], None]) -> None:
    told: list[bool] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _on_execute(_conn, _cursor, _statement, _parameters, context, _many):  # type: ignore[no-untyped-def]
        if not told and context is not None and (
                context.isinsert or context.isupdate or context.isdelete):
            told.append(True)
            callback(line)


