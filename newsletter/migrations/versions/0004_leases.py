"""Sending: an owner and a lease on each campaign batch, so several senders can share one.

The revision ids are only in ``revision``/``down_revision`` below (renumber there).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch_alter_table: SQLite cannot alter tables in place (a copy is made there).
    with op.batch_alter_table("campaign_batches") as batch:
        batch.add_column(sa.Column("owner", sa.String(120), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaign_batches") as batch:
        batch.drop_column("lease_expires_at")
        batch.drop_column("owner")
