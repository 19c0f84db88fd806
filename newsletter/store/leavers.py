"""Leavers in an imported file: recorded as leavers, so a CSV round trip keeps them out.

A row whose status columns (our export's status, list_status and subscriber_status,
or another tool's "Status") say the person unsubscribed, never confirmed, bounced,
complained or was blocklisted is not mailed. If the database does not know the
person yet (a restore into a new database), they are recorded with that status, so
that a later import of an older file cannot add them back. Someone the database
already knows keeps the status the database has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from .csvfiles import header_key
from .models import MembershipStatus, Source, SubscriberStatus
from .subscribers import add_subscriber, find_subscriber, set_subscriber_status

_SUPPRESSED = {"bounced": "bounced", "cleaned": "bounced", "complained": "complained",
               "blocklisted": "blocklisted"}
_LIST = {"unsubscribed": "unsubscribed", "unconfirmed": "unconfirmed", "pending": "unconfirmed",
         "subscribed": "subscribed"}


@dataclass(frozen=True)
class Leaver:
    """One row of the file that says the person does not receive mail."""

    line: int
    email: str
    name: str
    list_status: str  # unsubscribed, unconfirmed or subscribed (then suppressed below)
    suppressed: str | None  # bounced, complained, blocklisted, or None
    said: str  # the status as the file says it, for the report


class StatusReader:
    """Reads a row's statuses from the file's status columns (found by their headers)."""

    def __init__(self, header: Sequence[str], statuses: Sequence[int]) -> None:
        keys = {index: header_key(header[index]) for index in statuses if index < len(header)}
        self.list_columns = [i for i, k in keys.items() if k in ("list status", "member status")]
        self.subscriber_columns = [i for i, k in keys.items() if k == "subscriber status"]
        self.general = [i for i, k in keys.items() if k == "status"]

    def leaver(self, line: int, email: str, name: str, cells: list[str]) -> Leaver | None:
        """The row as a :class:`Leaver`, or None if the file says nothing against mailing."""
        def values(columns: list[int]) -> list[str]:
            return [cells[i].strip().lower() for i in columns if i < len(cells)]

        said = values(self.general)
        suppressed = next((_SUPPRESSED[v] for v in values(self.subscriber_columns) + said
                           if v in _SUPPRESSED), None)
        listed = next((_LIST[v] for v in values(self.list_columns) + said if v in _LIST), None)
        if suppressed is None and listed in (None, "subscribed"):
            return None
        shown = next((v for v in said if v), suppressed or listed or "")
        return Leaver(line, email, name, listed or "unsubscribed", suppressed, shown)


def record_leavers(session: Session, list_slug: str, leavers: Sequence[Leaver],
                   detail: str) -> list[tuple[Leaver, bool]]:
    """Record each leaver the database does not know; (leaver, recorded?) for each."""
    out: list[tuple[Leaver, bool]] = []
    for leaver in leavers:
        if find_subscriber(session, leaver.email) is not None:
            out.append((leaver, False))
            continue
        add_subscriber(session, leaver.email, list_slug, name=leaver.name or None,
                       status=MembershipStatus(leaver.list_status), source=Source.IMPORT,
                       detail=f"{detail} line {leaver.line}")
        if leaver.suppressed:
            set_subscriber_status(session, leaver.email, SubscriberStatus(leaver.suppressed),
                                  source=Source.IMPORT, detail=f"{detail} line {leaver.line}")
        out.append((leaver, True))
    return out
