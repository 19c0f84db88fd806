"""How far campaigns got: batches and recipients per state, and the overview
`newsletter status` shows (problem batches, per-message outcomes, who was not sent)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, and_, case, func, select
from sqlalchemy.orm import Session

from ..store import utcnow
from .leases import live
from .messages import MessageCounts, ambiguous_messages, not_delivered
from .messages import counts as message_counts
from .models import Batch, BatchState, Campaign
from .notsent import batches, deliveries, refused

# The key of state_counts for batches in submitting that a live sender is waiting on.
IN_FLIGHT = "in flight"
# The key of state_counts for recipients refused for good, whatever their batch's state.
NOT_SENT = "not sent"


@dataclass(frozen=True)
class StateCount:
    """How many batches and frozen recipients are in one state."""

    batches: int = 0
    recipients: int = 0


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
        per_batch = refused(campaign_id).group_by(deliveries.c.batch_id).subquery()
        rows = connection.execute(
            select(batches.c.state, flying, func.count(), func.sum(batches.c.recipient_count),
                   func.sum(per_batch.c.n))
            .select_from(batches.outerjoin(per_batch, per_batch.c.batch_id == batches.c.id))
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
