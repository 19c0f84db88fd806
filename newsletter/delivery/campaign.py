"""Campaign state in the database: freezing recipients into batches, claiming, finishing.

Every state change is its own short transaction, so a crash at any moment
leaves the database telling the truth: a batch is ``submitting`` from just
before its request leaves until its answer is written.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import NewsletterError
from ..store import Subscriber, get_list, recipients_query, utcnow
from .models import (
    Batch,
    BatchRecipients,
    BatchState,
    Campaign,
    CampaignStatus,
    pack_ids,
    unpack_ids,
)

batches = Batch.__table__
frozen = BatchRecipients.__table__
campaigns = Campaign.__table__


@dataclass(frozen=True)
class BatchRef:
    """A batch to send: its row id, number, state and frozen size."""

    id: int
    number: int
    state: str
    recipient_count: int


@dataclass(frozen=True)
class StateCount:
    """How many batches and frozen recipients are in one state."""

    batches: int = 0
    recipients: int = 0


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
    if not 1 <= batch_size <= 1000:
        raise NewsletterError(
            f"[delivery] batch_size must be between 1 and 1000, got {batch_size}.",
            hint="Fix batch_size in newsletter.toml (1000 is best).",
        )
    try:
        with engine.begin() as connection:
            with Session(connection) as session:
                list_id = get_list(session, list_slug).id
            now = utcnow()
            campaign_id = connection.execute(
                insert(campaigns).values(
                    issue_name=issue_name, list_slug=list_slug, transport=transport,
                    subject=subject, status=CampaignStatus.SENDING.value, recipient_count=0,
                    batch_count=0, send_at=send_at, sendgrid_batch_id=sendgrid_batch_id,
                    created_at=now,
                )
            ).inserted_primary_key[0]
            ids_query = recipients_query(list_id).with_only_columns(Subscriber.id)
            cursor = _RawStatement.compile(ids_query, connection.dialect).execute(connection, {})
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


@dataclass
class _RawStatement:
    """A Core statement compiled once, run on the DBAPI cursor: plain tuples, none of
    SQLAlchemy's per-row work (microseconds per row: seconds for a million recipients)."""

    sql: str
    compiled: Any
    positional: bool

    @classmethod
    def compile(cls, statement: Any, dialect: Any) -> _RawStatement:
        compiled = statement.compile(dialect=dialect)
        return cls(str(compiled), compiled, bool(dialect.positional))

    def execute(self, connection: Connection, values: dict[str, Any]) -> Any:
        params = self.compiled.construct_params(values)
        cursor = connection.connection.cursor()
        if self.positional:
            cursor.execute(self.sql, tuple(params[name] for name in self.compiled.positiontup))
        else:
            cursor.execute(self.sql, params)
        return cursor


def batch_refs(engine: Engine, campaign_id: int, states: Sequence[str]) -> list[BatchRef]:
    """The campaign's batches in ``states``, by number (without their recipient ids)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(batches.c.id, batches.c.number, batches.c.state, batches.c.recipient_count)
            .where(batches.c.campaign_id == campaign_id, batches.c.state.in_(list(states)))
            .order_by(batches.c.number)
        ).all()
    return [BatchRef(*row) for row in rows]


def state_counts(engine: Engine, campaign_id: int) -> dict[str, StateCount]:
    """Batches and frozen recipients per state (every state present, zero if none)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(batches.c.state, func.count(), func.sum(batches.c.recipient_count))
            .where(batches.c.campaign_id == campaign_id)
            .group_by(batches.c.state)
        ).all()
    counts = {state.value: StateCount() for state in BatchState}
    for state, n, recipients in rows:
        counts[state] = StateCount(int(n), int(recipients or 0))
    return counts


def frozen_ids(bind: Connection | Session, campaign_id: int, number: int) -> list[int]:
    """The subscriber ids frozen into batch ``number`` of a campaign."""
    packed = bind.execute(
        select(frozen.c.recipient_ids).where(
            frozen.c.campaign_id == campaign_id, frozen.c.number == number
        )
    ).scalar_one()
    return unpack_ids(packed)


class RecipientReader:
    """Reads the recipients of frozen batches, for one list, with one compiled query."""

    def __init__(self, engine: Engine, list_id: int, campaign_id: int) -> None:
        self.engine = engine
        self.list_id = list_id
        self.campaign_id = campaign_id
        # No ORDER BY: SQLite would sort in a temporary tree; the order does not matter.
        self.statement = _RawStatement.compile(
            recipients_query(
                bindparam("list_id"), bindparam("after_id"), bindparam("through_id")  # type: ignore[arg-type]
            ).order_by(None),
            engine.dialect,
        )

    def read(self, number: int) -> tuple[int, list[tuple[int, str, str]]]:
        """(frozen count, the frozen recipients still subscribed and active).

        Nobody is added after the freeze; people who unsubscribed (or bounced)
        since are left out.
        """
        with self.engine.connect() as connection:
            ids = frozen_ids(connection, self.campaign_id, number)
            if not ids:
                return 0, []
            cursor = self.statement.execute(connection, {
                "list_id": self.list_id, "after_id": ids[0] - 1, "through_id": ids[-1]})
            rows = cursor.fetchall()
            cursor.close()
        if len(rows) == len(ids):  # the usual case: nobody left since the freeze
            return len(ids), rows
        still = set(ids)
        return len(ids), [row for row in rows if row[0] in still]


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
          sent_count: int) -> bool:
    """Move a batch to ``submitting`` if it is still in ``from_states``; False if not.

    The check and the change are one UPDATE, so two senders never both claim a batch.
    """
    with _transaction(bind) as connection:
        result = connection.execute(
            update(batches)
            .where(batches.c.id == batch_id, batches.c.state.in_(list(from_states)))
            .values(
                state=BatchState.SUBMITTING.value, attempts=batches.c.attempts + 1,
                sent_count=sent_count, updated_at=utcnow(),
            )
        )
        return result.rowcount == 1


def finish(bind: Engine | Connection, batch_id: int, state: BatchState | None,
           error: str = "") -> None:
    """Write a request's outcome: ``accepted`` or ``failed`` (None keeps ``submitting``)."""
    values: dict[str, object] = {"last_error": error[:2000], "updated_at": utcnow()}
    if state is not None:
        values["state"] = state.value
    with _transaction(bind) as connection:
        connection.execute(update(batches).where(batches.c.id == batch_id).values(**values))


def mark_sent_if_complete(engine: Engine, campaign_id: int) -> bool:
    """Mark the campaign sent when every batch is accepted; True if it is."""
    counts = state_counts(engine, campaign_id)
    if any(counts[s.value].batches for s in BatchState if s is not BatchState.ACCEPTED):
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
        connection.execute(delete(frozen).where(frozen.c.campaign_id == campaign_id))
        connection.execute(delete(batches).where(batches.c.campaign_id == campaign_id))
        connection.execute(delete(campaigns).where(campaigns.c.id == campaign_id))


def list_campaigns(session: Session, issue_name: str | None = None) -> list[Campaign]:
    """Campaigns, newest first (only those of one issue if ``issue_name`` is given)."""
    query = select(Campaign).order_by(Campaign.created_at.desc(), Campaign.id.desc())
    if issue_name is not None:
        query = query.where(Campaign.issue_name == issue_name)
    return list(session.scalars(query))


def batch_rows(session: Session, campaign_id: int, states: Sequence[str]) -> list[Batch]:
    """Full batch rows in ``states`` (for reports: number, size, error)."""
    return list(
        session.scalars(
            select(Batch)
            .where(Batch.campaign_id == campaign_id, Batch.state.in_(list(states)))
            .order_by(Batch.number)
        )
    )


@dataclass(frozen=True)
class CampaignOverview:
    """One campaign with its batch counts per state, for `newsletter status`."""

    campaign: Campaign
    counts: dict[str, StateCount]
    problems: list[Batch]  # failed and ambiguous batches

    @property
    def ambiguous(self) -> StateCount:
        return self.counts[BatchState.SUBMITTING.value]


def overview(engine: Engine, issue_name: str | None = None) -> list[CampaignOverview]:
    """Every campaign (of one issue, if given) with its counts and problem batches."""
    with Session(engine, expire_on_commit=False) as session:
        found = list_campaigns(session, issue_name)
        problems = {
            c.id: batch_rows(session, c.id, [BatchState.FAILED.value,
                                             BatchState.SUBMITTING.value])
            for c in found
        }
        session.expunge_all()
    return [CampaignOverview(c, state_counts(engine, c.id), problems[c.id]) for c in found]
