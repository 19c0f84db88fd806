"""Database fixtures: every store test runs on a real SQLite file and a real PostgreSQL.

PostgreSQL comes from NEWSLETTER_TEST_POSTGRES_URL (``.ci/postgres`` starts a
server and prints it). Each test gets its own fresh schema there, dropped after
the test, so tests never see each other's rows. Without the variable the
PostgreSQL cases are skipped, saying why; when it is set but the server cannot
be reached, they fail.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

POSTGRES_ENV = "NEWSLETTER_TEST_POSTGRES_URL"


def _postgres_base_url() -> str:
    url = os.environ.get(POSTGRES_ENV, "")
    if not url:
        pytest.skip(
            f"{POSTGRES_ENV} is not set: start a server with `.ci/postgres` and export the "
            "line it prints to run the PostgreSQL cases."
        )
    from newsletter.store import normalise_url

    return normalise_url(url)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh, empty schema (dropped afterwards)."""
    base = _postgres_base_url()
    # Truly random (not the seeded `random`): runs in parallel share the server.
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        try:
            with admin.connect() as conn:
                # A connection a test leaked would block the drop forever; give up instead.
                conn.execute(text("SET lock_timeout = '10s'"))
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        except OperationalError as exc:
            warnings.warn(f"could not drop test schema {schema}: {exc.orig}", stacklevel=1)
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database: a SQLite file in tmp_path, or a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'subscribers.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def database(database_url: str) -> Iterator:
    """An open, migrated :class:`newsletter.store.Database` on each backend."""
    from newsletter.store import open_database

    db = open_database(database_url)
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture
def project_database_url(
    sample_project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The sample project (cwd) using ``database_url`` through NEWSLETTER_DATABASE_URL."""
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    return database_url
