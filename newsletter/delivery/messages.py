"""Per-message records of batches sent over SMTP: which recipient's message was accepted.

SendGrid answers for a whole batch; an SMTP server answers for each message.
So an SMTP batch writes one row per recipient (:class:`.models.BatchDelivery`)
(a batch of any transport also records, as ``bounced``, the recipients it left out:
see .refusals):

- ``sending`` for a chunk of messages (:data:`.smtp.CHUNK`), in one transaction,
  before the first of their final dots leaves;
- then each message's outcome: ``accepted`` (the server's 250 to the dot),
  ``ambiguous`` (the connection broke between the dot and the answer),
  ``bounced`` (5xx to RCPT TO), or no record (it never left: a 4xx, or the
  connection broke before the dot), all written in the transaction that marks
  the next chunk ``sending`` (or at the end).

A sender killed before a chunk's outcomes are written leaves its messages
``sending``: some were accepted, some never left, nobody can tell which, so
whoever claims the batch next turns them into ``ambiguous`` (:func:`settle`).
A resumed send skips accepted, bounced and ambiguous messages (so never sends
one twice); ``--retry-ambiguous`` sends the ambiguous ones again. Two writes
per chunk instead of two per message is what lets several connections share
SQLite's one writer (docs/performance.md, SMTP); the price is that a killed
sender leaves up to a chunk per connection ambiguous, not one message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..store import Source, Subscriber, SubscriberStatus, utcnow
from ..store.events import mark_status
from ..store.models import table
from .leases import live
from .models import Batch, BatchDelivery, BatchState, DeliveryState

deliveries = table(BatchDelivery)
batches = table(Batch)
TERMINAL = (DeliveryState.ACCEPTED.value, DeliveryState.BOUNCED.value)
SETTLED_DETAIL = "the sender stopped after handing it to the server, before the answer came"


def marks(bind: Connection, batch_id: int) -> dict[int, str]:
    """{subscriber id: state} of the messages a batch has records for."""
    with bind.begin():
        rows = bind.execute(select(deliveries.c.subscriber_id, deliveries.c.state)
                            .where(deliveries.c.batch_id == batch_id)).all()
    return {int(sid): str(state) for sid, state in rows}


def settle(bind: Connection, batch_id: int) -> int:
    """Messages left in ``sending`` by an earlier sender of this batch become ambiguous.

    Call only while holding the batch (its lease): nobody else writes its messages then.
    """
    with bind.begin():
        return bind.execute(
            update(deliveries)
            .where(deliveries.c.batch_id == batch_id,
                   deliveries.c.state == DeliveryState.SENDING.value)
            .values(state=DeliveryState.AMBIGUOUS.value, detail=SETTLED_DETAIL,
                    updated_at=utcnow())
        ).rowcount


_UPSERTS: dict[str, Any] = {}


def _upsert(dialect_name: str) -> Any:
    """INSERT ... ON CONFLICT UPDATE of delivery records (built once per dialect)."""
    if dialect_name not in _UPSERTS:
        dialect = postgresql if dialect_name == "postgresql" else sqlite
        statement = dialect.insert(deliveries)
        _UPSERTS[dialect_name] = statement.on_conflict_do_update(
            index_elements=["batch_id", "subscriber_id"],
            set_={"state": statement.excluded.state, "detail": statement.excluded.detail,
                  "updated_at": statement.excluded.updated_at},
        )
    return _UPSERTS[dialect_name]


def write_many(bind: Connection, batch_id: int,
               records: Sequence[tuple[int, DeliveryState, str]]) -> None:
    """Record (subscriber id, state, detail) of several messages, inserted or replacing
    earlier records, in the caller's transaction."""
    if not records:
        return
    now = utcnow()
    bind.execute(_upsert(bind.dialect.name), [
        {"batch_id": batch_id, "subscriber_id": subscriber_id, "state": state.value,
         "detail": detail[:1000], "updated_at": now}
        for subscriber_id, state, detail in records])


def forget(bind: Connection, batch_id: int, subscriber_ids: Sequence[int]) -> None:
    """Remove ``sending`` records of messages that never left, in the caller's transaction."""
    if subscriber_ids:
        bind.execute(delete(deliveries).where(
            deliveries.c.batch_id == batch_id, deliveries.c.subscriber_id.in_(subscriber_ids),
            deliveries.c.state == DeliveryState.SENDING.value))


@dataclass(frozen=True)
class MessageCounts:
    """Messages of one SMTP campaign by outcome."""

    accepted: int = 0
    bounced: int = 0
    ambiguous: int = 0  # including ``sending`` left by a sender that is gone
    in_flight: int = 0  # ``sending`` under a live sender's lease
    unsent: int = 0  # frozen recipients of unfinished batches without any record

    def todo(self, retry_ambiguous: bool) -> int:
        """Messages a resumed send would send."""
        return self.unsent + (self.ambiguous if retry_ambiguous else 0)


def counts(engine: Engine, campaign_id: int) -> MessageCounts:
    """How the messages of an SMTP campaign stand."""
    with engine.connect() as connection:
        dialect = connection.dialect.name
        sending = deliveries.c.state == DeliveryState.SENDING.value
        kind = case((and_(sending, live(dialect)), "in flight"),
                    (sending, DeliveryState.AMBIGUOUS.value), else_=deliveries.c.state)
        rows = connection.execute(
            select(kind, func.count())
            .select_from(deliveries.join(batches, batches.c.id == deliveries.c.batch_id))
            .where(batches.c.campaign_id == campaign_id)
            .group_by(kind)
        ).all()
        found = {str(k): int(n) for k, n in rows}
        unfinished = batches.c.state != BatchState.ACCEPTED.value
        frozen = connection.execute(
            select(func.coalesce(func.sum(batches.c.recipient_count), 0))
            .where(batches.c.campaign_id == campaign_id, unfinished)).scalar_one()
        recorded = connection.execute(
            select(func.count())
            .select_from(deliveries.join(batches, batches.c.id == deliveries.c.batch_id))
            .where(batches.c.campaign_id == campaign_id, unfinished)).scalar_one()
    return MessageCounts(
        accepted=found.get(DeliveryState.ACCEPTED.value, 0),
        bounced=found.get(DeliveryState.BOUNCED.value, 0),
        ambiguous=found.get(DeliveryState.AMBIGUOUS.value, 0),
        in_flight=found.get("in flight", 0),
        unsent=max(0, int(frozen) - int(recorded)),
    )


def ambiguous_messages(engine: Engine, campaign_id: int, limit: int = 50,
                       ) -> list[tuple[int, str, str]]:
    """(batch number, email, what happened) of ambiguous messages, for `status`."""
    with engine.connect() as connection:
        sending_dead = and_(deliveries.c.state == DeliveryState.SENDING.value,
                            ~live(connection.dialect.name))
        rows = _named(connection, campaign_id, limit,
                      (deliveries.c.state == DeliveryState.AMBIGUOUS.value) | sending_dead)
    return [(n, e, d or SETTLED_DETAIL) for n, e, d in rows]


def not_delivered(engine: Engine, campaign_id: int, limit: int = 50,
                  ) -> list[tuple[int, str, str]]:
    """(batch number, email, why) of recipients refused for good, for `status`: those an
    SMTP server refused, and, for every transport, those left out by .refusals."""
    with engine.connect() as connection:
        return _named(connection, campaign_id, limit,
                      deliveries.c.state == DeliveryState.BOUNCED.value)


def _named(connection: Connection, campaign_id: int, limit: int, condition: Any,
           ) -> list[tuple[int, str, str]]:
    """(batch number, email, detail) of a campaign's delivery records meeting ``condition``."""
    rows = connection.execute(
        select(batches.c.number, Subscriber.email, deliveries.c.detail)
        .select_from(deliveries.join(batches, batches.c.id == deliveries.c.batch_id)
                     .join(Subscriber, Subscriber.id == deliveries.c.subscriber_id))
        .where(batches.c.campaign_id == campaign_id, condition)
        .order_by(batches.c.number, Subscriber.email)
        .limit(limit)
    ).all()
    return [(int(n), str(e), str(d)) for n, e, d in rows]


def sent_since(engine: Engine, since: datetime) -> int:
    """Messages handed to an SMTP server since ``since`` (for the daily cap)."""
    with engine.connect() as connection:
        return int(connection.execute(
            select(func.count()).select_from(deliveries)
            .where(deliveries.c.updated_at >= since,
                   deliveries.c.state != DeliveryState.BOUNCED.value)).scalar_one())


# The history's Source for bounces the SMTP server reported: `newsletter send` did it
# (the detail names the server and carries its words).
BOUNCE_SOURCE = Source.SMTP


class MessageJournal:
    """The runner's :class:`.personal.Journal` for one attempt at one batch.

    Writes on the sending thread's own database connection: a chunk's ``sending``
    records and the previous chunk's outcomes in one transaction, committed before
    the chunk's first message goes. A bounce also marks the subscriber bounced in the
    store, with the server's words in the history.
    """

    def __init__(self, bind: Connection, batch_id: int, people: list[tuple[int, str, str]],
                 retry_ambiguous: bool) -> None:
        self.bind = bind
        self.batch_id = batch_id
        self.people = people
        self.retry_ambiguous = retry_ambiguous
        self.accepted_count = self.bounced_count = 0
        self.outcomes: dict[int, tuple[DeliveryState, str]] = {}  # told, not yet written
        self.gone: list[int] = []  # subscriber ids of messages that did not leave
        self.bounces: list[tuple[str, str]] = []  # (email, detail) to mark in the store
        settle(bind, batch_id)
        self.before = marks(bind, batch_id)

    def skip(self, index: int) -> bool:
        state = self.before.get(self.people[index][0])
        if state is None:
            return False
        return not (self.retry_ambiguous and state == DeliveryState.AMBIGUOUS.value)

    def sending(self, indices: Sequence[int]) -> None:
        with self.bind.begin():
            self._write_outcomes()
            write_many(self.bind, self.batch_id,
                       [(self.people[i][0], DeliveryState.SENDING, "") for i in indices])

    def flush(self) -> None:
        if self.outcomes or self.gone or self.bounces:
            with self.bind.begin():
                self._write_outcomes()

    def _write_outcomes(self) -> None:
        if self.bounces:
            with Session(bind=self.bind) as session:  # joins the caller's transaction
                for email, detail in self.bounces:
                    mark_status(session, email, SubscriberStatus.BOUNCED, source=BOUNCE_SOURCE,
                                detail=f"newsletter send over SMTP: {detail}")
                session.flush()
        write_many(self.bind, self.batch_id,
                   [(sid, state, detail) for sid, (state, detail) in self.outcomes.items()])
        forget(self.bind, self.batch_id, self.gone)
        self.outcomes, self.gone, self.bounces = {}, [], []

    def unsent(self, index: int) -> None:
        subscriber_id = self.people[index][0]
        if subscriber_id in self.outcomes:  # bounced before the session broke
            return
        if self.before.get(subscriber_id) == DeliveryState.AMBIGUOUS.value:
            # Retrying an ambiguous message that did not leave this time: still ambiguous.
            self.outcomes[subscriber_id] = (
                DeliveryState.AMBIGUOUS,
                "sent again with --retry-ambiguous, but that attempt did not leave")
        else:
            self.gone.append(subscriber_id)

    def accepted(self, index: int) -> None:
        self.outcomes[self.people[index][0]] = (DeliveryState.ACCEPTED, "")
        self.accepted_count += 1

    def ambiguous(self, index: int, detail: str) -> None:
        self.outcomes[self.people[index][0]] = (DeliveryState.AMBIGUOUS, detail)

    def bounced(self, index: int, detail: str) -> None:
        subscriber_id, email, _name = self.people[index]
        self.bounces.append((email, detail))
        self.outcomes[subscriber_id] = (DeliveryState.BOUNCED, detail)
        self.bounced_count += 1

    def ambiguous_count(self) -> int:
        """Messages of this batch now ambiguous (this attempt's and earlier ones)."""
        self.flush()
        with self.bind.begin():
            return int(self.bind.execute(
                select(func.count()).select_from(deliveries)
                .where(deliveries.c.batch_id == self.batch_id,
                       deliveries.c.state.in_([DeliveryState.AMBIGUOUS.value,
                                               DeliveryState.SENDING.value]))).scalar_one())
