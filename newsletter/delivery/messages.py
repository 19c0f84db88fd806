"""Per-message records of batches sent over SMTP: which recipient's message was accepted.

SendGrid answers for a whole batch; an SMTP server answers for each message.
So an SMTP batch writes one row per recipient (:class:`.models.BatchDelivery`):

- ``sending`` is written just before the message's final dot leaves, and
- ``accepted`` right after the server's 250 to it (before the next message),
- ``ambiguous`` when the connection broke between the two,
- ``bounced`` when the server refused the recipient (5xx to RCPT TO).

A sender killed between the dot and the write leaves ``sending``; whoever
claims the batch next turns it into ``ambiguous`` (:func:`settle`). A resumed
send skips accepted, bounced and ambiguous messages; ``--retry-ambiguous``
sends the ambiguous ones again. Every write is its own short transaction,
durable (WAL on SQLite) before the next message starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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


def write(bind: Connection, batch_id: int, subscriber_id: int, state: DeliveryState,
          detail: str = "") -> None:
    """Record one message's state (inserted, or replacing the earlier one); committed."""
    values = {"batch_id": batch_id, "subscriber_id": subscriber_id, "state": state.value,
              "detail": detail[:1000], "updated_at": utcnow()}
    dialect = postgresql if bind.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(deliveries).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["batch_id", "subscriber_id"],
        set_={"state": statement.excluded.state, "detail": statement.excluded.detail,
              "updated_at": statement.excluded.updated_at},
    )
    with bind.begin():
        bind.execute(statement)


def forget(bind: Connection, batch_id: int, subscriber_id: int) -> None:
    """Remove a ``sending`` record whose message never left (the dot was not sent)."""
    with bind.begin():
        bind.execute(delete(deliveries).where(
            deliveries.c.batch_id == batch_id, deliveries.c.subscriber_id == subscriber_id,
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
        dialect = connection.dialect.name
        sending_dead = and_(deliveries.c.state == DeliveryState.SENDING.value,
                            ~live(dialect))
        rows = connection.execute(
            select(batches.c.number, Subscriber.email, deliveries.c.detail)
            .select_from(deliveries.join(batches, batches.c.id == deliveries.c.batch_id)
                         .join(Subscriber, Subscriber.id == deliveries.c.subscriber_id))
            .where(batches.c.campaign_id == campaign_id,
                   (deliveries.c.state == DeliveryState.AMBIGUOUS.value) | sending_dead)
            .order_by(batches.c.number, Subscriber.email)
            .limit(limit)
        ).all()
    return [(int(n), str(e), str(d) or SETTLED_DETAIL) for n, e, d in rows]


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

    Writes each message's record on the sending thread's own database
    connection, committed before the transport goes on. A bounce also marks the
    subscriber bounced in the store, with the server's words in the history.
    """

    def __init__(self, bind: Connection, batch_id: int, people: list[tuple[int, str, str]],
                 retry_ambiguous: bool) -> None:
        self.bind = bind
        self.batch_id = batch_id
        self.people = people
        self.retry_ambiguous = retry_ambiguous
        self.accepted_count = self.bounced_count = 0
        settle(bind, batch_id)
        self.before = marks(bind, batch_id)

    def skip(self, index: int) -> bool:
        state = self.before.get(self.people[index][0])
        if state is None:
            return False
        return not (self.retry_ambiguous and state == DeliveryState.AMBIGUOUS.value)

    def sending(self, index: int) -> None:
        write(self.bind, self.batch_id, self.people[index][0], DeliveryState.SENDING)

    def unsent(self, index: int) -> None:
        subscriber_id = self.people[index][0]
        if self.before.get(subscriber_id) == DeliveryState.AMBIGUOUS.value:
            # Retrying an ambiguous message that did not leave this time: still ambiguous.
            write(self.bind, self.batch_id, subscriber_id, DeliveryState.AMBIGUOUS,
                  "sent again with --retry-ambiguous, but that attempt did not leave")
        else:
            forget(self.bind, self.batch_id, subscriber_id)

    def accepted(self, index: int) -> None:
        write(self.bind, self.batch_id, self.people[index][0], DeliveryState.ACCEPTED)
        self.accepted_count += 1

    def ambiguous(self, index: int, detail: str) -> None:
        write(self.bind, self.batch_id, self.people[index][0], DeliveryState.AMBIGUOUS, detail)

    def bounced(self, index: int, detail: str) -> None:
        subscriber_id, email, _name = self.people[index]
        with self.bind.begin(), Session(bind=self.bind) as session:
            mark_status(session, email, SubscriberStatus.BOUNCED,
                        source=BOUNCE_SOURCE, detail=f"newsletter send over SMTP: {detail}")
            session.flush()
        write(self.bind, self.batch_id, subscriber_id, DeliveryState.BOUNCED, detail)
        self.bounced_count += 1

    def ambiguous_count(self) -> int:
        """Messages of this batch now ambiguous (this attempt's and earlier ones)."""
        with self.bind.begin():
            return int(self.bind.execute(
                select(func.count()).select_from(deliveries)
                .where(deliveries.c.batch_id == self.batch_id,
                       deliveries.c.state.in_([DeliveryState.AMBIGUOUS.value,
                                               DeliveryState.SENDING.value]))).scalar_one())
