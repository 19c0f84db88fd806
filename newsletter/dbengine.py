"""SQLAlchemy engines for the subscriber database: URL normalisation and SQLite settings.

Shared by :mod:`newsletter.store.database` (the store's pooled engine) and
:mod:`newsletter.migrations` (a one-off engine with foreign keys off). It lives
outside the ``store`` package on purpose: importing ``newsletter.store.anything``
runs ``newsletter/store/__init__.py``, which opens databases through the
migrations, so migrations importing from the store would be an import cycle.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, pool
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .errors import NewsletterError

# The databases the store works with, and the one driver installed for each.
SUPPORTED_DRIVERS = {"sqlite": "pysqlite", "postgresql": "psycopg"}
URL_HINT = (
    "Use sqlite:///path/to/subscribers.db (a file) or postgresql://user:password@host/dbname "
    "in NEWSLETTER_DATABASE_URL (or [database] url in newsletter.toml)."
)

# How long a writer waits for another writer's lock on SQLite before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalise_url(url: str) -> str:
    """Make a database URL usable: PostgreSQL URLs get the installed psycopg (3) driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def shown_url(url: str) -> str:
    """``url`` as typed, but with anything that may be a password replaced by ***.

    It masks from ``scheme://user:`` up to the last ``@``: more than the password, at
    worst, never less (a password may itself hold ``:`` or ``@``).
    """
    masked, found = re.subn(r"(//[^/:@]*:).*@", r"\1***@", url, count=1)
    return masked if found else re.sub(r"((?:^|/)[^/:@]*:).*@", r"\1***@", url, count=1)


def supported_url(url: str) -> URL:
    """The parsed URL, or NewsletterError naming the URLs the store supports.

    Checked before any engine is made, so an unknown database or driver gives one
    plain error instead of a driver's traceback. The password is never shown.
    """
    url = normalise_url(url.strip())
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise NewsletterError(f"Not a database URL: {shown_url(url)!r}.", hint=URL_HINT) from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_DRIVERS:
        raise NewsletterError(
            f"The subscriber store cannot use a {backend!r} database: {shown_url(url)!r}. "
            "It works with SQLite and PostgreSQL.", hint=URL_HINT)
    if parsed.get_driver_name() != SUPPORTED_DRIVERS[backend]:
        raise NewsletterError(
            f"The database driver {parsed.get_driver_name()!r} is not available: "
            f"{shown_url(url)!r}.", hint=URL_HINT)
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise NewsletterError(
            f"A SQLite database URL must name a file: {shown_url(url)!r}.", hint=URL_HINT)
    return parsed


def _sqlite_pragmas(foreign_keys: bool) -> Callable[[Any, Any], None]:
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
    parsed = supported_url(url)
    # Parameters are personal data (addresses, names): keep them out of errors and logs.
    kwargs: dict[str, Any] = {"hide_parameters": True}
    if not pooled:
        kwargs["poolclass"] = pool.NullPool
    if parsed.get_backend_name() == "sqlite":
        Path(str(parsed.database)).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas(foreign_keys))
        return engine
    if parsed.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)
