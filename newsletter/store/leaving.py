"""Why people leave: the reasons given on the unsubscribe page, kept in the history.

A reason is one of :data:`REASONS` (a short choice list) plus optional words of the
reader's own. Both go into the history entry of the unsubscribe, in the ``detail``
(``unsubscribe page; reason: too-many; <their words>``), so no new table is needed
and :func:`newsletter.store.history` shows it. :func:`reason_counts` counts them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..project import Project
from .database import open_project_database
from .models import HistoryEntry, MailingList, MembershipStatus, Source

# code -> what the page shows. The codes are stored: never rename one.
REASONS: dict[str, str] = {
    "too-many": "Too many emails",
    "not-relevant": "The content is not relevant to me",
    "never-signed-up": "I never signed up",
    "other": "Another reason",
}
MAX_NOTE = 500
_MARK = "; reason: "


def reason_detail(where: str, reason: str, note: str = "") -> str:
    """The history ``detail`` of an unsubscribe with a reason (unknown codes are dropped)."""
    code = reason if reason in REASONS else ""
    note = " ".join(note.split())[:MAX_NOTE]  # one line, at most MAX_NOTE characters
    if not code and not note:
        return where
    return f"{where}{_MARK}{code or 'other'}" + (f"; {note}" if note else "")


def reason_of(detail: str) -> str | None:
    """The reason code in a history ``detail``, or None if none was given."""
    _where, mark, rest = detail.partition(_MARK)
    if not mark:
        return None
    code = rest.split(";", 1)[0].strip()
    return code if code in REASONS else None


@dataclass(frozen=True)
class ReasonCount:
    """How many people left one list giving one reason."""

    list_slug: str
    reason: str  # a code of REASONS
    label: str
    count: int


def reason_counts(session: Session, list_slug: str | None = None) -> list[ReasonCount]:
    """Reasons given for leaving through the unsubscribe link, per list (most given first).

    Leaving every list at once counts once on each list left.
    """
    query = (
        select(MailingList.slug, HistoryEntry.detail)
        .join(MailingList, MailingList.id == HistoryEntry.list_id)
        .where(HistoryEntry.source == Source.UNSUBSCRIBE_LINK.value,
               HistoryEntry.new_status == MembershipStatus.UNSUBSCRIBED.value,
               HistoryEntry.detail.like(f"%{_MARK}%"))
    )
    if list_slug is not None:
        query = query.where(MailingList.slug == list_slug)
    counts: Counter[tuple[str, str]] = Counter()
    for slug, detail in session.execute(query):
        if (code := reason_of(detail)) is not None:
            counts[(slug, code)] += 1
    return [
        ReasonCount(slug, code, REASONS[code], n)
        for (slug, code), n in sorted(counts.items(), key=lambda item: (item[0][0], -item[1]))
    ]


def project_reason_counts(project: Project) -> list[ReasonCount]:
    """:func:`reason_counts` of every list in a project's database (``newsletter status``)."""
    database = open_project_database(project)
    try:
        with database.transaction() as session:
            return reason_counts(session)
    finally:
        database.dispose()
