"""What readers did: per-reader opens and clicks, clicked links, events per hour.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reader_events",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="CASCADE",
                                name="fk_reader_events_subscriber_id_subscribers"),
        sa.PrimaryKeyConstraint("campaign_id", "kind", "link_id", "subscriber_id",
                                name="pk_reader_events"),
    )
    op.create_index("ix_reader_events_subscriber", "reader_events", ["subscriber_id"])
    op.create_table(
        "campaign_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_links"),
        sa.UniqueConstraint("campaign_id", "url", name="uq_campaign_links_campaign_id"),
    )
    op.create_table(
        "campaign_hour_counts",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "kind", "hour", name="pk_campaign_hour_counts"),
    )


def downgrade() -> None:
    op.drop_table("campaign_hour_counts")
    op.drop_table("campaign_links")
    op.drop_index("ix_reader_events_subscriber", table_name="reader_events")
    op.drop_table("reader_events")
