"""Subscriber store: subscribers, lists, memberships, history.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _when(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        _when("status_changed_at"),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_subscribers"),
        sa.UniqueConstraint("email_key", name="uq_subscribers_email_key"),
        sa.CheckConstraint(
            "status in ('active', 'bounced', 'complained', 'blocklisted')",
            name="ck_subscribers_status",
        ),
    )
    op.create_table(
        "lists",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("opt_in", sa.String(10), nullable=False, server_default="single"),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_lists"),
        sa.UniqueConstraint("slug", name="uq_lists_slug"),
        sa.CheckConstraint("opt_in in ('single', 'double')", name="ck_lists_opt_in"),
    )
    op.create_table(
        "memberships",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        _when("changed_at"),
        sa.Column("how", sa.String(32), nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("subscriber_id", "list_id", name="pk_memberships"),
        sa.ForeignKeyConstraint(
            ["subscriber_id"], ["subscribers.id"], ondelete="CASCADE",
            name="fk_memberships_subscriber_id_subscribers",
        ),
        sa.ForeignKeyConstraint(
            ["list_id"], ["lists.id"], ondelete="CASCADE", name="fk_memberships_list_id_lists"
        ),
        sa.CheckConstraint(
            "status in ('unconfirmed', 'subscribed', 'unsubscribed')",
            name="ck_memberships_status",
        ),
    )
    op.create_index(
        "ix_memberships_list_status_subscriber",
        "memberships",
        ["list_id", "status", "subscriber_id"],
    )
    op.create_table(
        "subscriber_history",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=True),
        _when("at"),
        sa.Column("old_status", sa.String(20), nullable=True),
        sa.Column("new_status", sa.String(20), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name="pk_subscriber_history"),
        sa.ForeignKeyConstraint(
            ["subscriber_id"], ["subscribers.id"], ondelete="CASCADE",
            name="fk_subscriber_history_subscriber_id_subscribers",
        ),
        sa.ForeignKeyConstraint(
            ["list_id"], ["lists.id"], ondelete="CASCADE",
            name="fk_subscriber_history_list_id_lists",
        ),
    )
    op.create_index(
        "ix_subscriber_history_subscriber_id", "subscriber_history", ["subscriber_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_subscriber_history_subscriber_id", table_name="subscriber_history")
    op.drop_table("subscriber_history")
    op.drop_index("ix_memberships_list_status_subscriber", table_name="memberships")
    op.drop_table("memberships")
    op.drop_table("lists")
    op.drop_table("subscribers")
