"""Campaign state in the database: freezing recipients into batches, claiming, finishing.

Every state change is its own short transaction, so a crash at any moment
leaves the database telling the truth: a batch is ``submitting`` from just
before its request leaves until its answer is written.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Integer,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import NewsletterError
from ..store import (
    Membership,
    MembershipStatus,
    Subscriber,
    SubscriberStatus,
    get_list,
    recipients_query,
    utcnow,
)
from ..store.models import table
from . import refusals
from .leases import live, until_expr
from .messages import MessageCounts, ambiguous_messages, not_delivered
from .messages import counts as message_counts
from .models import (
    Batch,
    BatchDelivery,
    BatchRecipients,
    BatchState,
    Campaign,
    CampaignStatus,
    DeliveryState,
    pack_ids,
    unpack_ids,
)

batches = table(Batch)
frozen = table(BatchRecipients)
campaigns = table(Campaign)
deliveries = table(BatchDelivery)
# The key of state_counts for batches in submitting that a live sender is waiting on.
IN_FLIGHT = "in flight"
# The key of state_counts for recipients refused for good, whatever their batch's state.
NOT_SENT = "not sent"


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


def state_counts(engine: Engine, campaign_id: int) -> dict[str, StateCount]:
    """Batches and frozen recipients per state (every state present, zero if none).

    ``submitting`` counts only the ambiguous batches (lease run out or given
    up); those a live sender is waiting on are under :data:`IN_FLIGHT`. Recipients
    refused for good (``bounced`` delivery records: left out by .refusals, or refused by
    an SMTP server) are not counted in their batch's state but under :data:`NOT_SENT`
    (whose ``batches`` is 0: each batch is counted in its own state), so ``accepted``
    counts only recipients a transport took, and the recipient counts still add up to
    the frozen total.
    """
    with engine.connect() as connection:
        flying = case((and_(batches.c.state == BatchState.SUBMITTING.value,
                            live(connection.dialect.name)), 1), else_=0).label("flying")
        refused = (
            select(deliveries.c.batch_id, func.count().label("n"))
            .where(deliveries.c.state == DeliveryState.BOUNCED.value,
                   deliveries.c.batch_id.in_(
                       select(batches.c.id).where(batches.c.campaign_id == campaign_id)))
            .group_by(deliveries.c.batch_id)
            .subquery()
        )
        rows = connection.execute(
            select(batches.c.state, flying, func.count(), func.sum(batches.c.recipient_count),
                   func.sum(refused.c.n))
            .select_from(batches.outerjoin(refused, refused.c.batch_id == batches.c.id))
            .where(batches.c.campaign_id == campaign_id)
            .group_by(batches.c.state, flying)
        ).all()
    counts = {state.value: StateCount() for state in BatchState}
    counts[IN_FLIGHT] = StateCount()
    not_sent = 0
    for state, in_flight, n, recipients, gone in rows:
        counts[IN_FLIGHT if in_flight else state] = StateCount(
            int(n), int(recipients or 0) - int(gone or 0))
        not_sent += int(gone or 0)
    counts[NOT_SENT] = StateCount(0, not_sent)
    return counts


def frozen_ids(bind: Connection | Session, campaign_id: int, number: int) -> list[int]:
    """The subscriber ids frozen into batch ``number`` of a campaign."""
    packed = bind.execute(
        select(frozen.c.recipient_ids).where(
            frozen.c.campaign_id == campaign_id, frozen.c.number == number
        )
    ).scalar_one()
    return unpack_ids(packed)


class BatchPeople(NamedTuple):
    """Who one frozen batch goes to, as read just before its request."""

    frozen: int  # recipients frozen into the batch
    people: list[tuple[int, str, str]]  # (id, email, name) of those still subscribed and active
    # Of those, the addresses no mail server accepts (see .refusals): left out for good.
    refused: list[tuple[int, str, str]]


# PostgreSQL reads a batch by its id range when the range is at most this many times the
# batch (a list holding most subscribers), else by its ids: on a list of 1% of 300,000
# subscribers a range read took 27 ms a batch, the ids 7-10 ms; a dense range 0.5 ms.
DENSE = 4
RANGE, ARRAY = -1, -2  # RecipientReader.statements keys on PostgreSQL


class RecipientReader:
    """Reads the recipients of frozen batches, for one list, by their frozen ids.

    Exactly the ids frozen into a batch are returned: someone who joined after the
    freeze with an id inside the batch's range must not get the issue. PostgreSQL
    reads the batch's id range and the frozen ids are kept here (or, for a list spread
    thinly over the subscribers, reads the ids themselves); SQLite gets an IN list, its
    statement compiled once per batch length.
    """

    def __init__(self, engine: Engine, list_id: int, campaign_id: int) -> None:
        self.engine = engine
        self.list_id = list_id
        self.campaign_id = campaign_id
        self.postgres = engine.dialect.name == "postgresql"
        self.statements: dict[int, _RawStatement] = {}

    def _statement(self, count: int, dense: bool = True) -> _RawStatement:
        key = (RANGE if dense else ARRAY) if self.postgres else count
        statement = self.statements.get(key)
        if statement is None:
            if self.postgres and dense:
                # The batch's id range bounds both tables, so each is one index range
                # whatever the list's size (bounding only subscribers, PostgreSQL may
                # hash-join every membership of the list). read() keeps the frozen ids:
                # a 1,000-id array (``= ANY``) cost 5 times the range's time to plan and
                # look up, one index descent per id.
                low, high = bindparam("low", type_=Integer), bindparam("high", type_=Integer)
                wanted = and_(Subscriber.id.between(low, high),
                              Membership.subscriber_id.between(low, high))
            elif self.postgres:
                # A list thinly spread over the subscribers: a range would read every
                # subscriber in it, so the ids themselves, bounding both tables.
                ids = cast(bindparam("ids"), postgresql.ARRAY(BigInteger))
                wanted = and_(Subscriber.id == func.any(ids),
                              Membership.subscriber_id == func.any(ids))
            else:
                wanted = Subscriber.id.in_([bindparam(f"i{n}") for n in range(count)])
            # No ORDER BY: SQLite would sort in a temporary tree; the order does not matter.
            query = (
                select(Subscriber.id, Subscriber.email, Subscriber.name)
                .join(Membership, and_(Membership.subscriber_id == Subscriber.id,
                                       Membership.list_id == bindparam("list_id")))
                .where(wanted, Membership.status == MembershipStatus.SUBSCRIBED.value,
                       Subscriber.status == SubscriberStatus.ACTIVE.value)
            )
            statement = _RawStatement.compile(query, self.engine.dialect)
            self.statements[key] = statement
        return statement

    def read(self, number: int) -> BatchPeople:
        """The batch's frozen count, the frozen recipients still subscribed and active,
        and those of them whose address no mail server accepts (kept out of ``people``).

        Nobody is added after the freeze; people who unsubscribed (or bounced)
        since are left out. This is the one place every transport gets a batch's
        recipients from, so the refusal rule of :mod:`.refusals` is applied here.
        """
        with self.engine.connect() as connection:
            ids = frozen_ids(connection, self.campaign_id, number)
            if not ids:
                return BatchPeople(0, [], [])
            values: dict[str, Any] = {"list_id": self.list_id}
            low, high = min(ids), max(ids)
            dense = high - low < DENSE * len(ids)
            if self.postgres and dense:
                values.update(low=low, high=high)
            elif self.postgres:
                values["ids"] = ids
            else:
                values.update({f"i{n}": value for n, value in enumerate(ids)})
            cursor = self._statement(len(ids), dense).execute(connection, values)
            rows = cursor.fetchall()
            cursor.close()
        if self.postgres and dense:  # the range may hold people who joined since the freeze
            frozen_set = set(ids)
            rows = [row for row in rows if row[0] in frozen_set]
        people, refused = refusals.split(rows)
        return BatchPeople(len(ids), people, refused)


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
    (:attr:`BatchPeople.refused`) are recorded as not delivered in the same transaction.
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


def _live_lease(batch: Batch) -> bool:
    # Python's clock: good enough for a report (the send itself asks the database).
    return batch.lease_expires_at is not None and batch.lease_expires_at > utcnow()


@dataclass(frozen=True)
class CampaignOverview:
    """One campaign with its batch counts per state, for `newsletter status`."""

    campaign: Campaign
    counts: dict[str, StateCount]
    problems: list[Batch]  # failed and ambiguous batches (not those in flight)
    # SMTP sends: messages by outcome, and the ambiguous ones by address.
    messages: MessageCounts | None = None
    ambiguous_messages: list[tuple[int, str, str]] = field(default_factory=list)
    # Every transport: (batch number, email, why) of recipients refused for good.
    not_delivered: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def ambiguous(self) -> StateCount:
        return self.counts[BatchState.SUBMITTING.value]

    @property
    def in_flight(self) -> StateCount:
        return self.counts[IN_FLIGHT]

    @property
    def not_sent(self) -> StateCount:
        """Recipients refused for good (named in :attr:`not_delivered`), in no state's count."""
        return self.counts[NOT_SENT]


def overview(engine: Engine, issue_name: str | None = None) -> list[CampaignOverview]:
    """Every campaign (of one issue, if given) with its counts and problem batches."""
    with Session(engine, expire_on_commit=False) as session:
        found = list_campaigns(session, issue_name)
        problems = {
            c.id: [b for b in batch_rows(session, c.id, [BatchState.FAILED.value,
                                                         BatchState.SUBMITTING.value])
                   if b.state == BatchState.FAILED or not _live_lease(b)]
            for c in found
        }
        session.expunge_all()
    out = []
    for c in found:
        item = CampaignOverview(c, state_counts(engine, c.id), problems[c.id],
                                not_delivered=not_delivered(engine, c.id))
        if c.transport == "smtp":
            # Its ambiguous batches are named message by message instead.
            item = CampaignOverview(
                c, item.counts, [b for b in item.problems if b.state == BatchState.FAILED],
                message_counts(engine, c.id), ambiguous_messages(engine, c.id),
                item.not_delivered)
        out.append(item)
    return out
