"""Reports: a list's joiners and leavers per day, campaigns' unique readers, an index.

``list_day_counts`` is filled from ``subscriber_history`` by newsletter.store.growth,
which folds in the rows above a high-water mark (``sync_state`` "history_counted_upto").
Deleting (or changing) a history row at or below the mark changes the counts through a
trigger, so the counts stay equal to the rows however they are deleted (forgetting a
person, a subscriber or list deleted with its history). Inserts cost nothing extra: an
import of a million rows is folded in once, by the next report.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# As in newsletter.store.models, written out: a migration stays as it was written.
LEAVING = "new_status IN ('unsubscribed', 'bounced', 'complained')"
MARK = "(SELECT CAST(value AS INTEGER) FROM sync_state WHERE name = 'history_counted_upto')"
COUNTED = ("{row}.list_id IS NOT NULL AND {row}.new_status IN ('subscribed', 'unsubscribed') "
           "AND {row}.old_status IS DISTINCT FROM {row}.new_status AND {row}.id <= " + MARK)

_QUALIFIES = ("{row}.list_id IS NOT NULL AND {row}.new_status IN ('subscribed', 'unsubscribed') "
              "AND {row}.old_status IS NOT {row}.new_status")

SQLITE_TRIGGERS = [
    # SQLite gives a new row max(id) + 1, so deleting the newest rows would let their ids
    # be used again below the mark: the mark comes down to the newest remaining row.
    f"""CREATE TRIGGER list_day_counts_delete AFTER DELETE ON subscriber_history
    WHEN OLD.id <= {MARK}
    BEGIN
        UPDATE list_day_counts SET count = count - 1
        WHERE list_id = OLD.list_id AND day = date(OLD.at) AND status = OLD.new_status
          AND {_QUALIFIES.format(row="OLD")};
        UPDATE sync_state SET value = CAST(
            (SELECT coalesce(max(id), 0) FROM subscriber_history) AS TEXT)
        WHERE name = 'history_counted_upto'
          AND CAST(value AS INTEGER) > (SELECT coalesce(max(id), 0) FROM subscriber_history);
    END""",
    f"""CREATE TRIGGER list_day_counts_update_old
    AFTER UPDATE OF list_id, at, old_status, new_status ON subscriber_history
    WHEN {COUNTED.format(row="OLD").replace("IS DISTINCT FROM", "IS NOT")}
    BEGIN
        UPDATE list_day_counts SET count = count - 1
        WHERE list_id = OLD.list_id AND day = date(OLD.at) AND status = OLD.new_status;
    END""",
    f"""CREATE TRIGGER list_day_counts_update_new
    AFTER UPDATE OF list_id, at, old_status, new_status ON subscriber_history
    WHEN {COUNTED.format(row="NEW").replace("IS DISTINCT FROM", "IS NOT")}
    BEGIN
        INSERT INTO list_day_counts (list_id, day, status, count)
        VALUES (NEW.list_id, date(NEW.at), NEW.new_status, 1)
        ON CONFLICT (list_id, day, status) DO UPDATE SET count = list_day_counts.count + 1;
    END""",
]

_READERS_DELETED = """INSERT INTO campaign_readers (campaign_id, events, deletions,
            deletions_seen, openers, machine_openers, clickers)
        VALUES (OLD.campaign_id, -1, 1, 0, 0, 0, 0)
        ON CONFLICT (campaign_id) DO UPDATE SET deletions = campaign_readers.deletions + 1"""

SQLITE_TRIGGERS.append(f"""CREATE TRIGGER campaign_readers_deleted AFTER DELETE ON reader_events
    BEGIN
        {_READERS_DELETED};
    END""")

POSTGRESQL_READERS = [
    f"""CREATE FUNCTION campaign_readers_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {_READERS_DELETED};
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER campaign_readers_deleted AFTER DELETE ON reader_events
    FOR EACH ROW EXECUTE FUNCTION campaign_readers_deleted()""",
]

POSTGRESQL_FUNCTION = f"""
CREATE FUNCTION list_day_counts_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF {COUNTED.format(row="OLD")} THEN
        UPDATE list_day_counts SET count = count - 1
        WHERE list_id = OLD.list_id AND day = (OLD.at AT TIME ZONE 'UTC')::date
          AND status = OLD.new_status;
    END IF;
    IF TG_OP = 'UPDATE' AND {COUNTED.format(row="NEW")} THEN
        INSERT INTO list_day_counts (list_id, day, status, count)
        VALUES (NEW.list_id, (NEW.at AT TIME ZONE 'UTC')::date, NEW.new_status, 1)
        ON CONFLICT (list_id, day, status) DO UPDATE SET count = list_day_counts.count + 1;
    END IF;
    RETURN NULL;
END $$"""

POSTGRESQL_TRIGGER = """
CREATE TRIGGER list_day_counts_follow
AFTER DELETE OR UPDATE OF list_id, at, old_status, new_status ON subscriber_history
FOR EACH ROW EXECUTE FUNCTION list_day_counts_follow()"""


def upgrade() -> None:
    # Who left a list, bounced or complained, by time: a report's unsubscribe reasons and
    # weekly bounces. Partial, so that importing (all "subscribed") costs nothing more.
    op.create_index("ix_subscriber_history_leaving", "subscriber_history",
                    ["list_id", "new_status", "at"], sqlite_where=sa.text(LEAVING),
                    postgresql_where=sa.text(LEAVING))
    op.create_table(
        "list_day_counts",
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("list_id", "day", "status", name="pk_list_day_counts"),
    )
    op.create_table(
        "campaign_readers",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("deletions", sa.Integer(), nullable=False),
        sa.Column("deletions_seen", sa.Integer(), nullable=False),
        sa.Column("openers", sa.Integer(), nullable=False),
        sa.Column("machine_openers", sa.Integer(), nullable=False),
        sa.Column("clickers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", name="pk_campaign_readers"),
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in (POSTGRESQL_FUNCTION, POSTGRESQL_TRIGGER, *POSTGRESQL_READERS):
            op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER list_day_counts_follow ON subscriber_history")
        op.execute("DROP FUNCTION list_day_counts_follow()")
        op.execute("DROP TRIGGER campaign_readers_deleted ON reader_events")
        op.execute("DROP FUNCTION campaign_readers_deleted()")
    else:
        for name in ("list_day_counts_delete", "list_day_counts_update_old",
                     "list_day_counts_update_new", "campaign_readers_deleted"):
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table("campaign_readers")
    op.execute("DELETE FROM sync_state WHERE name = 'history_counted_upto'")
    op.drop_table("list_day_counts")
    op.drop_index("ix_subscriber_history_leaving", table_name="subscriber_history")
