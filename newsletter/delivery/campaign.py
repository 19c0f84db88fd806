"""Campaign state in the database: freezing recipients into batches, claiming, finishing.

Every state change is its own short transaction, so a crash at any moment
leaves the database telling the truth: a batch is ``submitting`` from just
before its request leaves until its answer is written. A batch's recipients are read
back by :mod:`.batchrecipients`; how far a campaign got is counted by :mod:`.overview`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import NewsletterError
from ..store import Subscriber, get_list, recipients_query, utcnow
from ..store.models import table
from . import refusals
from .leases import until_expr
from .models import (
    Batch,
    BatchDelivery,
    BatchRecipients,
    BatchState,
    Campaign,
    CampaignStatus,
    pack_ids,
)
from .overview import state_counts
from .rawsql import RawStatement

batches = table(Batch)
frozen = table(BatchRecipients)
campaigns = table(Campaign)
deliveries = table(BatchDelivery)


def find_campaign(
    session: Session, issue_name: str, list_slug: str, transport: str
) -> Campaign | None:
    """The campaign of this issue to this list through this transport, if any."""
    return session.scalars(
        select(Campaign).where(
            Campaign.issue_name == issue_name,
            Campaign.list_slug == list_slug,
            Campaign.transport == transport,
        )
    ).one_or_none()


def create_campaign(
    engine: Engine,
    *,
    issue_name: str,
    list_slug: str,
    transport: str,
    subject: str,
    batch_size: int,
    send_at: datetime | None = None,
    sendgrid_batch_id: str | None = None,
) -> int:
    """Create a campaign and freeze the list's current recipients into numbered batches.

    Runs in one transaction: either the campaign exists with all its batches,
    or not at all. Returns the campaign id. If another process created the same
    campaign first, raises NewsletterError.
    """
    try:
        with engine.begin() as connection:
            with Session(connection) as session:
                list_id = get_list(session, list_slug).id
            now = utcnow()
            inserted = connection.execute(
                insert(campaigns).values(
                    issue_name=issue_name, list_slug=list_slug, transport=transport,
                    subject=subject, status=CampaignStatus.SENDING.value, recipient_count=0,
                    batch_count=0, send_at=send_at, sendgrid_batch_id=sendgrid_batch_id,
                    created_at=now,
                )
            ).inserted_primary_key
            assert inserted is not None
            campaign_id = inserted[0]
            ids_query = recipients_query(list_id).with_only_columns(Subscriber.id)
            cursor = RawStatement.compile(ids_query, connection.dialect).execute(connection, {})
            rows: list[dict[str, object]] = []
            ids_rows: list[dict[str, object]] = []
            total = number = 0
            while chunk_rows := cursor.fetchmany(batch_size):
                chunk = [row[0] for row in chunk_rows]
                number += 1
                total += len(chunk)
                rows.append({
                    "campaign_id": campaign_id, "number": number,
                    "state": BatchState.PENDING.value, "recipient_count": len(chunk),
                    "first_id": chunk[0], "last_id": chunk[-1], "sent_count": 0,
                    "attempts": 0, "last_error": "", "updated_at": now,
                })
                ids_rows.append({"campaign_id": campaign_id, "number": number,
                                 "recipient_ids": pack_ids(chunk)})
                if len(rows) >= 500:
                    connection.execute(insert(batches), rows)
                    connection.execute(insert(frozen), ids_rows)
                    rows, ids_rows = [], []
            cursor.close()
            if rows:
                connection.execute(insert(batches), rows)
                connection.execute(insert(frozen), ids_rows)
            connection.execute(
                update(campaigns)
                .where(campaigns.c.id == campaign_id)
                .values(recipient_count=total, batch_count=number)
            )
            return int(campaign_id)
    except IntegrityError:
        raise NewsletterError(
            f"Another send of {issue_name} to {list_slug!r} started at the same moment.",
            hint="Let it finish; `newsletter status` shows its progress.",
        ) from None


@contextmanager
def _transaction(bind: Engine | Connection) -> Iterator[Connection]:
    """A committed-on-success transaction on an engine, or on an open connection (which
    a sending thread keeps, saving a pool round trip per state change)."""
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            yield connection
    else:
        with bind.begin():
            yield bind


def claim(bind: Engine | Connection, batch_id: int, from_states: Sequence[str],
          sent_count: int, owner: str, lease: float,
          refused: Sequence[tuple[int, str, str]] = ()) -> bool:
    """Move a batch ``owner`` reserved to ``submitting`` if it is still in ``from_states``.

    False if not (or if another sender holds it now). The check and the change
    are one UPDATE, so two senders never both claim a batch. The lease runs
    ``lease`` seconds (the heartbeat renews it). The batch's ``refused`` recipients
    (:attr:`.batchrecipients.BatchPeople.refused`) are recorded as not delivered in the
    same transaction.
    """
    with _transaction(bind) as connection:
        result = connection.execute(
            update(batches)
            .where(batches.c.id == batch_id, batches.c.state.in_(list(from_states)),
                   batches.c.owner == owner)
            .values(
                state=BatchState.SUBMITTING.value, attempts=batches.c.attempts + 1,
                sent_count=sent_count, updated_at=utcnow(),
                lease_expires_at=until_expr(connection.dialect.name, lease),
            )
        )
        if result.rowcount != 1:
            return False
        if refused:
            refusals.record(connection, batch_id, refused)
        return True


def finish(bind: Engine | Connection, batch_id: int, state: BatchState | None,
           error: str = "", *, release: bool = True) -> None:
    """Write a request's outcome: ``accepted`` or ``failed`` (None keeps ``submitting``).

    ``release`` gives up the lease: a batch kept in submitting is then ambiguous
    at once. A sender about to try a failed batch again keeps it (release=False).
    """
    values: dict[str, object] = {"last_error": error[:2000], "updated_at": utcnow()}
    if state is not None:
        values["state"] = state.value
    if release:
        values["lease_expires_at"] = None
    with _transaction(bind) as connection:
        if connection.dialect.name == "postgresql":
            # An outcome need not wait for the disk (about 4 ms a batch): the next
            # claim's commit flushes it. If the server crashes first and it is lost, the
            # batch stays submitting and becomes ambiguous: never sent twice.
            connection.exec_driver_sql("SET LOCAL synchronous_commit TO off")
        connection.execute(update(batches).where(batches.c.id == batch_id).values(**values))


@contextmanager
def relaxed_commits(engine: Engine) -> Iterator[Connection]:
    """A connection whose commits do not wait for the disk on PostgreSQL (as SQLite's
    WAL with synchronous=NORMAL): for writes that a later, durable commit makes safe
    (reservations: a batch is only sent after its claim, whose commit flushes them)."""
    with engine.connect() as connection:
        if connection.dialect.name != "postgresql":
            yield connection
            return
        connection.exec_driver_sql("SET synchronous_commit TO off")
        connection.commit()
        try:
            yield connection
        finally:
            if not connection.invalidated:
                connection.rollback()
                connection.exec_driver_sql("RESET synchronous_commit")
                connection.commit()


def mark_sent_if_complete(engine: Engine, campaign_id: int) -> bool:
    """Mark the campaign sent when every batch is accepted; True if it is."""
    counts = state_counts(engine, campaign_id)
    if any(count.batches for key, count in counts.items() if key != BatchState.ACCEPTED):
        return False
    with engine.begin() as connection:
        connection.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id, campaigns.c.status != CampaignStatus.SENT.value)
            .values(status=CampaignStatus.SENT.value, finished_at=utcnow())
        )
    return True


def set_status(engine: Engine, campaign_id: int, status: CampaignStatus) -> None:
    """Change a campaign's status (e.g. cancelled)."""
    with engine.begin() as connection:
        connection.execute(
            update(campaigns).where(campaigns.c.id == campaign_id).values(
                status=status.value, finished_at=utcnow()
            )
        )


def delete_campaign(engine: Engine, campaign_id: int) -> None:
    """Remove a campaign and its batches (only for cancelled ones, before sending again)."""
    with engine.begin() as connection:
        connection.execute(delete(deliveries).where(deliveries.c.batch_id.in_(
            select(batches.c.id).where(batches.c.campaign_id == campaign_id))))
        connection.execute(delete(frozen).where(frozen.c.campaign_id == campaign_id))
        connection.execute(delete(batches).where(batches.c.campaign_id == campaign_id))
        connection.execute(delete(campaigns).where(campaigns.c.id == campaign_id))
