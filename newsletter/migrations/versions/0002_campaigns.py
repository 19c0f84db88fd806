"""Sending: campaigns (issue × list × transport), their batches and frozen recipients.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("issue_name", sa.String(200), nullable=False),
        sa.Column("list_slug", sa.String(64), nullable=False),
        sa.Column("transport", sa.String(20), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False, server_default=""),
        sa.Column("status", sa.String(20), nullable=False, server_default="sending"),
        sa.Column("recipient_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("batch_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sendgrid_batch_id", sa.String(100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
        sa.UniqueConstraint(
            "issue_name", "list_slug", "transport", name="uq_campaigns_issue_name"
        ),
        sa.CheckConstraint(
            "status in ('sending', 'sent', 'cancelled')", name="ck_campaigns_status"
        ),
    )
    op.create_table(
        "campaign_batches",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(12), nullable=False, server_default="pending"),
        sa.Column("recipient_count", sa.Integer(), nullable=False),
        sa.Column("first_id", sa.Integer(), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("sent_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_batches"),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], ondelete="CASCADE",
            name="fk_campaign_batches_campaign_id_campaigns",
        ),
        sa.UniqueConstraint("campaign_id", "number", name="uq_campaign_batches_campaign_id"),
        sa.CheckConstraint(
            "state in ('pending', 'submitting', 'accepted', 'failed')",
            name="ck_campaign_batches_state",
        ),
    )
    op.create_index(
        "ix_campaign_batches_campaign_state", "campaign_batches", ["campaign_id", "state"]
    )
    op.create_table(
        "campaign_batch_recipients",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("recipient_ids", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "number", name="pk_campaign_batch_recipients"),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], ondelete="CASCADE",
            name="fk_campaign_batch_recipients_campaign_id_campaigns",
        ),
    )


def downgrade() -> None:
    op.drop_table("campaign_batch_recipients")
    op.drop_index("ix_campaign_batches_campaign_state", table_name="campaign_batches")
    op.drop_table("campaign_batches")
    op.drop_table("campaigns")
