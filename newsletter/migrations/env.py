"""Alembic environment for the newsletter database.

Run through :mod:`newsletter.migrations` (``upgrade(url)``), which passes an open
connection in ``config.attributes["connection"]``; no alembic.ini is needed.
"""

from __future__ import annotations

import contextlib
import importlib

from alembic import context
from sqlalchemy import create_engine, pool

from newsletter.store.models import Base

# Every area's tables share Base.metadata; import them so autogenerate sees them all.
for _module in ("newsletter.delivery.models",):
    with contextlib.suppress(ImportError):
        importlib.import_module(_module)

config = context.config
target_metadata = Base.metadata


def _configure(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("alembic was run without sqlalchemy.url; use newsletter.migrations")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        _configure(connection)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
