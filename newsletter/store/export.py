"""Exporting a list's members to CSV or to an Excel workbook (.xlsx)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from .cells import neutralise
from .models import Membership, MembershipStatus, Subscriber, SubscriberStatus
from .subscribers import get_list

COLUMNS = (
    "email", "name", "status", "list_status", "subscriber_status", "changed_at", "created_at",
    "attributes",
)
BOM = "\ufeff"  # lets Excel see that a CSV file is UTF-8 (München, 北京)


def export_rows(
    engine: Engine, list_slug: str, *, include_all: bool = True, chunk: int = 5000
) -> Iterator[tuple[str, str, str, str, str, str, str, str]]:
    """A list's members as rows of text in the order of COLUMNS (see :func:`export_csv`)."""
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
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=chunk).execute(query)
        for email, name, list_status, status, changed, created, attributes in result:
            overall = list_status if status == SubscriberStatus.ACTIVE.value else status
            yield (
                email, name, overall, list_status, status,
                changed.isoformat(timespec="seconds"), created.isoformat(timespec="seconds"),
                json.dumps(attributes, ensure_ascii=False) if attributes else "",
            )


def export_csv(
    engine: Engine, list_slug: str, out: TextIO, *, include_all: bool = True,
    chunk: int = 5000, excel: bool = False,
) -> int:
    """Write a list's members to ``out`` as CSV and return how many rows were written.

    Columns: email, name, status (``subscribed`` only if the person would receive
    mail, else the reason: unconfirmed, unsubscribed, bounced, complained,
    blocklisted), list_status, subscriber_status, changed_at and created_at
    (ISO 8601, UTC) and attributes (JSON). ``include_all=False`` writes only
    those who receive mail. Rows stream in subscriber id order (constant memory).

    Every cell is quoted, and an email or name that a spreadsheet would run as a
    formula (starting with = + - @, tab or carriage return) gets a leading ``'``;
    the import removes it again. ``excel=True`` starts with a byte-order mark.
    """
    if excel:
        out.write(BOM)
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow(COLUMNS)
    count = 0
    for email, name, *rest in export_rows(
        engine, list_slug, include_all=include_all, chunk=chunk
    ):
        # The other columns are ours (statuses, dates, JSON that starts with "{").
        writer.writerow((neutralise(email), neutralise(name), *rest))
        count += 1
    return count


def export_xlsx(
    engine: Engine, list_slug: str, path: Path, *, include_all: bool = True
) -> int:
    """Write a list's members to the Excel workbook ``path``; returns the row count.

    Same columns as :func:`export_csv`; every cell is stored as text, never a formula.
    """
    # Imported here: openpyxl takes a while to load and only this export needs it.
    from .xlsxfiles import write_xlsx

    return write_xlsx(path, COLUMNS, export_rows(engine, list_slug, include_all=include_all))
