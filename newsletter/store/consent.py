"""The consent rule: who may be put (back) on a list.

Never re-add someone who unsubscribed, bounced or complained without their explicit
say-so. Every way into a list applies this one rule: :func:`newsletter.store.add_subscriber`
(and so the CLI), the CSV import (:mod:`newsletter.store.importer`) and self-service
sign-ups (:mod:`newsletter.store.signups`).

- Someone who unsubscribed from a list comes back only with ``resubscribe`` (they asked).
- A bounced, complained or blocklisted address is never put on a list, not even with
  ``resubscribe``: first set it back to active, once the address works and they asked.
- An address erased on request (``newsletter subscribers forget``, :mod:`.erasure`) is
  never stored again: an import rejects it ("erased on request"), ``add`` refuses it, and
  a sign-up silently does nothing (with the same answer as a success).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from ..errors import NewsletterError
from .erasure import is_erased
from .models import MembershipStatus, SubscriberStatus

ERASED_REASON = "erased on request"


class Refusal(StrEnum):
    """Why someone may not be put on a list."""

    LEFT = "left"  # unsubscribed from this list
    SUPPRESSED = "suppressed"  # bounced, complained or blocklisted: every list
    ERASED = "erased"  # erased on request: never stored again


class ConsentRequired(NewsletterError):
    """Adding this person would go against the consent rule (see :mod:`.consent`)."""

    def __init__(self, message: str, *, hint: str, refusal: Refusal) -> None:
        super().__init__(message, hint=hint)
        self.refusal = refusal


def refusal(
    subscriber_status: str, list_status: str | None, *, resubscribe: bool
) -> Refusal | None:
    """Why someone may not be put on a list, or None if they may.

    ``list_status`` is their membership's status on that list (None if not on it).
    """
    if subscriber_status != SubscriberStatus.ACTIVE:
        return Refusal.SUPPRESSED
    if list_status == MembershipStatus.UNSUBSCRIBED and not resubscribe:
        return Refusal.LEFT
    return None


def consent_error(
    email: str,
    list_slug: str,
    why: Refusal,
    *,
    subscriber_status: str,
    since: datetime,
    how: str = "",
) -> ConsentRequired:
    """The error that explains a refusal, with the command that would (rightly) overrule it."""
    if why is Refusal.LEFT:
        return ConsentRequired(
            f"{email} unsubscribed from {list_slug} on {since:%Y-%m-%d}"
            + (f" ({how})" if how else "") + "; not adding them back.",
            hint=f"Only if they asked to rejoin: `newsletter subscribers add {email} "
            f"--list {list_slug} --resubscribe` (in code: resubscribe=True). "
            f"`newsletter subscribers show {email}` shows the history.",
            refusal=why,
        )
    return ConsentRequired(
        f"{email} is {subscriber_status} (since {since:%Y-%m-%d}), so no list may send to it; "
        f"not adding it to {list_slug}.",
        hint=f"Only if the address works again and they asked to rejoin: "
        f"`newsletter subscribers set-status {email} active`, then add them again. "
        f"`newsletter subscribers show {email}` shows the history.",
        refusal=why,
    )


def erased(bind: Session | Connection, address: str) -> bool:
    """True if the normalised ``address`` was erased on request: never store it again."""
    return is_erased(bind, address)


def erased_error(email: str) -> ConsentRequired:
    """The error for adding an address that was erased on request."""
    return ConsentRequired(
        f"{email} was erased on request (`newsletter subscribers forget`); it cannot be "
        "added to any list again.",
        hint="Nothing to do: the person asked to be forgotten. Only a fingerprint of the "
        "address is kept, so that no import, add or sign-up brings it back.",
        refusal=Refusal.ERASED,
    )
