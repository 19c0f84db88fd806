"""Finding a stored subscriber by id or address: the one lookup every per-person action uses.

An address is looked up in the form it is stored under (:func:`newsletter.emails.stored_email`),
in any letter case: so a person a database made by an older version holds with non-ASCII
letters before the @ (``josé@example.org``, refused for anyone new) is found too, and
can be shown, unsubscribed, marked or erased on request like anyone else.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..emails import InvalidEmail, stored_email
from .models import Subscriber, email_key

SubscriberRef = int | str | Subscriber


def find_subscriber(session: Session, ref: SubscriberRef) -> Subscriber | None:
    """The subscriber with this id or email address (in its stored form), or None."""
    if isinstance(ref, Subscriber):
        return ref
    if isinstance(ref, int):
        return session.get(Subscriber, ref)
    try:
        email = stored_email(ref)
    except InvalidEmail:
        return None
    return session.scalars(
        select(Subscriber).where(Subscriber.email_key == email_key(email))
    ).one_or_none()
