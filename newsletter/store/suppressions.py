"""Rules for suppressions (bounces, complaints, unsubscribes) from SendGrid.

Shared by the event webhook (:mod:`newsletter.web.events`) and `newsletter
subscribers sync` (:mod:`newsletter.sync`), so both treat an event the same way.
Automatic changes never soften a status: a complaint is not turned back into a bounce.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..errors import NewsletterError
from .models import Source, SubscriberStatus
from .subscribers import find_list, find_subscriber, set_subscriber_status, unsubscribe

# How serious a subscriber-wide status is: automatic changes never go down this scale.
_RANK = {
    SubscriberStatus.ACTIVE.value: 0,
    SubscriberStatus.BOUNCED.value: 1,
    SubscriberStatus.COMPLAINED.value: 2,
    SubscriberStatus.BLOCKLISTED.value: 3,
}


def mark_status(
    session: Session, email: str, status: SubscriberStatus, *, source: Source, detail: str
) -> bool:
    """Set a subscriber-wide status unless it would be a downgrade; True if it changed.

    Unknown addresses are added with that status, so a later import skips them too.
    """
    try:
        found = find_subscriber(session, email)
        if found is not None and _RANK.get(found.status, 0) >= _RANK[status.value]:
            return False
        set_subscriber_status(session, found or email, status, source=source, detail=detail)
    except NewsletterError:  # not an email address: nothing to apply it to
        return False
    return True


def unsubscribe_address(
    session: Session, email: str, list_slug: str | None, *, source: Source, detail: str
) -> bool:
    """Unsubscribe ``email`` from ``list_slug`` (or every list if None); True if it changed.

    Unknown addresses and lists are skipped: there is nothing to unsubscribe.
    """
    subscriber = find_subscriber(session, email)
    if subscriber is None:
        return False
    if list_slug is not None and find_list(session, list_slug) is None:
        return False
    return bool(unsubscribe(session, subscriber, list_slug, source=source, detail=detail))


def apply_action(
    session: Session, email: str, action: tuple[str, str | None], *, source: Source, detail: str
) -> bool:
    """Apply ("bounced"|"complained"|"unsubscribed", list slug or None) to ``email``.

    Returns True if anything changed.
    """
    kind, list_slug = action
    if kind == "bounced":
        return mark_status(session, email, SubscriberStatus.BOUNCED, source=source, detail=detail)
    if kind == "complained":
        return mark_status(
            session, email, SubscriberStatus.COMPLAINED, source=source, detail=detail
        )
    return unsubscribe_address(session, email, list_slug, source=source, detail=detail)
