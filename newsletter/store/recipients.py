"""Who a send goes to: subscribed members of a list whose subscriber-wide status is active."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from sqlalchemy import Connection, Engine, Select, func, select
from sqlalchemy.orm import Session

from .models import Membership, MembershipStatus, Subscriber, SubscriberStatus
from .subscribers import get_list


class Recipient(NamedTuple):
    """One person to send to."""

    id: int
    email: str
    name: str


def recipients_query(list_id: int, after_id: int = 0, through_id: int | None = None) -> Select:
    """SELECT id, email, name of a list's recipients, ordered by subscriber id."""
    query = (
        select(Subscriber.id, Subscriber.email, Subscriber.name)
        .join(Membership, Membership.subscriber_id == Subscriber.id)
        .where(
            Membership.list_id == list_id,
            Membership.status == MembershipStatus.SUBSCRIBED.value,
            Subscriber.status == SubscriberStatus.ACTIVE.value,
            # The range bounds both tables, so PostgreSQL reads index ranges of each
            # instead of scanning every membership of the list.
            Subscriber.id > after_id,
            Membership.subscriber_id > after_id,
        )
        .order_by(Subscriber.id)
    )
    if through_id is not None:
        query = query.where(Subscriber.id <= through_id,
                            Membership.subscriber_id <= through_id)
    return query


def iter_recipients(
    bind: Engine | Connection,
    list_slug: str,
    *,
    chunk: int = 1000,
    after_id: int = 0,
    through_id: int | None = None,
) -> Iterator[Recipient]:
    """Stream a list's recipients as :class:`Recipient` (id, email, name), by ascending id.

    Memory stays constant however long the list: PostgreSQL uses a server-side
    cursor fetching ``chunk`` rows at a time; SQLite steps through its cursor.
    The order is stable, so a send can be frozen and resumed: pass the last id
    handled as ``after_id``, and the largest id seen when the send started as
    ``through_id`` (see :func:`last_recipient_id`) to leave out later sign-ups.
    Raises NotFound for an unknown list. Pass an Engine (or a Database's .engine)
    or a Connection; the rows are read in their own transaction when given an Engine.
    """
    if isinstance(bind, Engine):
        with bind.connect() as connection:
            yield from iter_recipients(
                connection, list_slug, chunk=chunk, after_id=after_id, through_id=through_id
            )
        return
    with Session(bind) as session:
        list_id = get_list(session, list_slug).id
    result = bind.execution_options(stream_results=True, yield_per=chunk).execute(
        recipients_query(list_id, after_id, through_id)
    )
    try:
        for row in result:
            yield Recipient(row[0], row[1], row[2])
    finally:
        result.close()


def count_recipients(session: Session, list_slug: str) -> int:
    """How many people a send to this list reaches right now."""
    list_id = get_list(session, list_slug).id
    query = recipients_query(list_id).with_only_columns(func.count()).order_by(None)
    return int(session.scalar(query) or 0)


def last_recipient_id(session: Session, list_slug: str) -> int:
    """The largest subscriber id among a list's recipients (0 if none): a freeze point."""
    list_id = get_list(session, list_slug).id
    query = recipients_query(list_id).with_only_columns(func.max(Subscriber.id)).order_by(None)
    return int(session.scalar(query) or 0)
