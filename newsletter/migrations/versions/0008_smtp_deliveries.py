"""Sending through SMTP: one row per message a batch handed to the server.

SMTP accepts or refuses each message on its own, so a batch sent over SMTP
records each recipient's outcome (sending, accepted, ambiguous, bounced). The
revision ids are in ``revision``/``down_revision`` below.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_deliveries",
        sa.Column("batch_id", sa.Integer,
                  sa.ForeignKey("campaign_batches.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("subscriber_id", sa.Integer, primary_key=True),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_batch_deliveries_updated_at", "batch_deliveries", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_batch_deliveries_updated_at", table_name="batch_deliveries")
    op.drop_table("batch_deliveries")
