"""Repair subscribers' attributes stored as a JSON string holding JSON (double-encoded).

An import that changed only a name wrote SQLite's raw JSON text back through the
JSON column, which encoded it again. Each damaged value is decoded while it is a
JSON string, and written back once it is an object; anything else is left alone.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_MAX_DEPTH = 10  # more layers than any real damage; stops a pathological value


def repaired(stored: str) -> dict[str, Any] | None:
    """The object inside a double-encoded value, or None if ``stored`` is not one."""
    try:
        value: Any = json.loads(stored)
    except ValueError:
        return None
    if not isinstance(value, str):
        return None  # already an object (or another JSON value): not this damage
    for _ in range(_MAX_DEPTH):
        if not isinstance(value, str):
            break
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        found = sa.text("SELECT id, attributes::text FROM subscribers "
                        "WHERE json_typeof(attributes::json) = 'string'")
        store = sa.text("UPDATE subscribers SET attributes = CAST(:value AS json) "
                        "WHERE id = :id")
    else:
        found = sa.text("SELECT id, attributes FROM subscribers "
                        "WHERE ltrim(CAST(attributes AS TEXT)) LIKE '\"%'")
        store = sa.text("UPDATE subscribers SET attributes = :value WHERE id = :id")
    fixes = []
    for sid, stored in bind.execute(found):
        value = repaired(stored)
        if value is not None:
            fixes.append({"id": sid, "value": json.dumps(value, ensure_ascii=False)})
    if fixes:
        bind.execute(store, fixes)


def downgrade() -> None:
    """Nothing to undo: the repaired values are what the rows should always have held."""
