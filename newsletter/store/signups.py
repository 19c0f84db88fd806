"""Self-service sign-ups: someone asks to join a list themselves (the web form, a studio).

The address typed in is not yet proven to be theirs, so the store decides here, for
every front end, what such a request may do (the consent rule, :mod:`.consent`):

- a double opt-in list, or anyone who left this list before, gets an *unconfirmed*
  membership: they receive nothing until they click a confirmation link;
- a new person on a single opt-in list is subscribed at once;
- someone already subscribed is left as they are;
- a bounced, complained or blocklisted address, or one erased on request, is refused:
  nothing is recorded and nothing may be sent to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.orm import Session

from ..emails import InvalidEmail, normalise_email
from .consent import erased
from .models import Membership, MembershipStatus, Source, Subscriber, SubscriberStatus
from .subscribers import add_subscriber, find_subscriber, get_list


class Outcome(StrEnum):
    """What a sign-up did, and so which email (if any) the front end sends."""

    CONFIRM = "confirm"  # unconfirmed: send a confirmation link
    JOINED = "joined"  # subscribed just now: a welcome email may go
    UNCHANGED = "unchanged"  # already subscribed: send nothing
    REFUSED = "refused"  # bounced, complained or blocklisted: nothing recorded, send nothing


@dataclass(frozen=True)
class SignUp:
    """What :func:`sign_up` did, with the subscriber and their membership (if any)."""

    outcome: Outcome
    subscriber: Subscriber | None
    membership: Membership | None


def sign_up(
    session: Session,
    email: str,
    list_slug: str,
    *,
    name: str = "",
    source: Source | str = Source.WEB_FORM,
    detail: str = "sign-up form",
    double_opt_in: bool = False,
) -> SignUp:
    """Record that ``email`` asked to join ``list_slug`` (the caller commits).

    A stored name is never replaced by the one a form gives (anyone can type any
    address). Raises :class:`~newsletter.store.NotFound` if there is no such list,
    and NewsletterError if ``email`` is not an address.
    """
    mailing_list = get_list(session, list_slug)
    existing = find_subscriber(session, email)
    if existing is None and _erased(session, email):
        return SignUp(Outcome.REFUSED, None, None)
    membership = (
        session.get(Membership, (existing.id, mailing_list.id)) if existing is not None else None
    )
    before = membership.status if membership is not None else None
    if existing is not None and existing.status != SubscriberStatus.ACTIVE:
        return SignUp(Outcome.REFUSED, existing, membership)
    if before == MembershipStatus.SUBSCRIBED:
        return SignUp(Outcome.UNCHANGED, existing, membership)
    came_back = before in (MembershipStatus.UNSUBSCRIBED, MembershipStatus.UNCONFIRMED)
    if mailing_list.double_opt_in or came_back or double_opt_in:
        status = MembershipStatus.UNCONFIRMED
    else:
        status = MembershipStatus.SUBSCRIBED
    if before == MembershipStatus.UNSUBSCRIBED:
        detail = f"{detail}: signed up again after unsubscribing; waiting for confirmation"
    membership = add_subscriber(
        session, email, list_slug, name=None if existing else (name.strip() or None),
        status=status, source=source, detail=detail,
        # They asked themselves; the confirmation link proves the address is theirs.
        resubscribe=before == MembershipStatus.UNSUBSCRIBED,
    )
    outcome = Outcome.CONFIRM if status == MembershipStatus.UNCONFIRMED else Outcome.JOINED
    return SignUp(outcome, membership.subscriber, membership)


def _erased(session: Session, email: str) -> bool:
    try:
        return erased(session, normalise_email(email))
    except InvalidEmail:
        return False  # add_subscriber explains what is wrong with the address
