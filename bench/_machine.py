"""One line describing this machine, and a scratch PostgreSQL schema, for the benchmarks."""

from __future__ import annotations

import os
import platform
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def machine() -> str:
    """'2 CPUs (AMD EPYC), Python 3.11.7, SQLite 3.40.1, Linux, load 1.2'."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = f", load {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return (f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}, {platform.system()}{load}")


@contextmanager
def postgres_schema(url: str, name: str) -> Iterator[str]:
    """A URL whose search_path is a fresh schema ``name`` on ``url``'s server, dropped after."""
    from sqlalchemy import create_engine, text  # bench-only; keeps `machine()` import light
    from sqlalchemy.engine import make_url

    from newsletter.dbengine import normalise_url

    base = normalise_url(url)
    schema = f"{name}_{os.getpid()}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield make_url(base).update_query_dict(
            {"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
