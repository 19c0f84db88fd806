"""Exporting a list's members to CSV."""

from __future__ import annotations

import csv
import json
from typing import TextIO

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from .models import Membership, MembershipStatus, Subscriber, SubscriberStatus
from .subscribers import get_list

COLUMNS = (
    "email", "name", "status", "list_status", "subscriber_status", "changed_at", "created_at",
    "attributes",
)


def export_csv(
    engine: Engine, list_slug: str, out: TextIO, *, include_all: bool = True, chunk: int = 5000
) -> int:
    """Write a list's members to ``out`` as CSV and return how many rows were written.

    Columns: email, name, status (``subscribed`` only if the person would receive
    mail, else the reason: unconfirmed, unsubscribed, bounced, complained,
    blocklisted), list_status, subscriber_status, changed_at and created_at
    (ISO 8601, UTC) and attributes (JSON). ``include_all=False`` writes only
    those who receive mail. Rows stream in subscriber id order (constant memory).
    """
    with Session(engine) as session:
        list_id = get_list(session, list_slug).id
    query = (
        select(
            Subscriber.email,
            Subscriber.name,
            Membership.status,
            Subscriber.status,
            Membership.changed_at,
            Subscriber.created_at,
            Subscriber.attributes,
        )
        .join(Membership, Membership.subscriber_id == Subscriber.id)
        .where(Membership.list_id == list_id)
        .order_by(Subscriber.id)
    )
    if not include_all:
        query = query.where(
            Membership.status == MembershipStatus.SUBSCRIBED.value,
            Subscriber.status == SubscriberStatus.ACTIVE.value,
        )
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    count = 0
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=chunk).execute(query)
        for email, name, list_status, status, changed, created, attributes in result:
            overall = list_status if status == SubscriberStatus.ACTIVE.value else status
            writer.writerow((
                email, name, overall, list_status, status,
                changed.isoformat(timespec="seconds"), created.isoformat(timespec="seconds"),
                json.dumps(attributes, ensure_ascii=False) if attributes else "",
            ))
            count += 1
    return count
