"""Who a frozen batch goes to: the ids frozen into it, read back as the people still
subscribed and active, with those no mail server accepts split off."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import BigInteger, Connection, Engine, Integer, and_, bindparam, cast, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from ..store import Membership, MembershipStatus, Subscriber, SubscriberStatus
from ..store.models import table
from . import refusals
from .models import BatchRecipients, unpack_ids
from .rawsql import RawStatement

frozen = table(BatchRecipients)


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
        self.statements: dict[int, RawStatement] = {}

    def _statement(self, count: int, dense: bool = True) -> RawStatement:
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
            statement = RawStatement.compile(query, self.engine.dialect)
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
