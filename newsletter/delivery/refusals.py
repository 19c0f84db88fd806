"""Recipients a send leaves out for good: stored addresses that no mail server accepts.

:func:`newsletter.emails.normalise_email` refuses an address whose part before the
@ has letters outside plain ASCII (``josé@example.org``) wherever addresses come
in, but a database made by an older version may still hold such a subscriber. The
email package cannot write them into a To header (a whole outbox or SMTP batch then
stopped as ambiguous) and SendGrid answers 501 for them.

So the one rule is applied where a batch's recipients are read
(:meth:`.batchrecipients.RecipientReader.read`, for every transport, in the main process
and in the helper processes; dry and sandbox runs split the same way): those
refused never reach a request, and the batch's claim records each of them, in the
claim's own transaction, as a ``bounced`` delivery (the record SMTP keeps of a
recipient its server refused for good) whose detail says why and what to do. The
rest of the batch goes out, and a resumed send never tries them again.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from ..emails import non_ascii_local_part
from .messages import write_many
from .models import DeliveryState

Row = tuple[int, str, str]  # (subscriber id, email, name), as a batch's recipients are read

REASON = "the address has non-ASCII letters before the @, which mail servers do not accept"


def detail(email: str) -> str:
    """The plain reason recorded for a left-out address, with the command that removes it."""
    return (f"{REASON}; ask the person for another address, or remove them with "
            f"`newsletter subscribers remove {email}`")


def refused(email: str) -> bool:
    """True if a send leaves this stored address out for good (the one rule)."""
    return non_ascii_local_part(email)


def split(rows: list[Row]) -> tuple[list[Row], list[Row]]:
    """(the rows to send to, the rows left out for good), each in the order given."""
    # The plain-ASCII test first: about 30 µs for a batch of 1000, not 115 (one call a row).
    left_out = [row for row in rows if not row[1].isascii() and refused(row[1])]
    if not left_out:
        return rows, []
    ids = {row[0] for row in left_out}
    return [row for row in rows if row[0] not in ids], left_out


def record(bind: Connection, batch_id: int, left_out: Sequence[Row]) -> None:
    """Write the left-out recipients of a batch as bounced deliveries, in the caller's
    transaction (writing them again, when a batch is claimed again, changes nothing)."""
    write_many(bind, batch_id, [(row[0], DeliveryState.BOUNCED, detail(row[1]))
                                for row in left_out])


def next_step(list_slug: str, emails: Sequence[str]) -> str:
    """What staff do about left-out addresses, in words, with the commands."""
    old = emails[0] if len(emails) == 1 else "OLD@ADDRESS"
    return ("Ask the person for another address and add it with `newsletter subscribers add "
            f"NEW@ADDRESS --list {list_slug}`, then remove the old one with `newsletter "
            f"subscribers remove {old}` (or only remove it). Every send leaves them out "
            "until then.")
