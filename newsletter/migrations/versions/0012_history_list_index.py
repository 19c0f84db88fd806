"""An index on subscriber_history.list_id: deleting a list no longer scans all history.

The foreign key cascades on delete, and PostgreSQL does not index foreign keys by
itself, so every deleted list read the whole history table (issue 19).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_subscriber_history_list_id", "subscriber_history", ["list_id"])


def downgrade() -> None:
    op.drop_index("ix_subscriber_history_list_id", table_name="subscriber_history")
