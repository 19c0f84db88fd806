"""Lists, subscribers and status changes: the store's library API.

Every function takes a SQLAlchemy ``Session`` and never commits: the caller owns
the transaction (``with db.transaction() as session: ...``). Every change of a
membership or subscriber-wide status writes a :class:`HistoryEntry` with its
time, :class:`Source` and optional detail.

A subscriber may be given as its id (int), its email address (str, looked up in
the form it is stored under: :mod:`.lookup`) or a :class:`Subscriber` object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from ..emails import InvalidEmail, non_ascii_local_part, normalise_email
from ..errors import NewsletterError
from .consent import Refusal, consent_error, erased, erased_error, refusal
from .lookup import SubscriberRef, find_subscriber
from .models import (
    HistoryEntry,
    MailingList,
    Membership,
    MembershipStatus,
    OptIn,
    Source,
    Subscriber,
    SubscriberStatus,
    email_key,
    utcnow,
)

_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class NotFound(NewsletterError):
    """No list or subscriber by that slug, email or id."""


def _email(text: str) -> str:
    """``text`` normalised, as a new address is stored; a NewsletterError saying why not."""
    try:
        return normalise_email(text)
    except InvalidEmail as exc:
        hint = "Check the spelling, e.g. ann@example.org."
        if non_ascii_local_part(text.strip()):
            hint = ("Ask the person for another address and use that one. (If an older "
                    "version stored this address, `newsletter subscribers show`, `remove`, "
                    "`set-status` and `forget` still work on it.)")
        raise NewsletterError(f"{text!r} is not a valid email address: {exc}",
                              hint=hint) from None


# ---------------------------------------------------------------- lists


def find_list(session: Session, slug: str) -> MailingList | None:
    """The list with this slug, or None."""
    return session.scalars(select(MailingList).where(MailingList.slug == slug)).one_or_none()


def get_list(session: Session, slug: str) -> MailingList:
    """The list with this slug; raises :class:`NotFound` (with a hint) if there is none."""
    found = find_list(session, slug)
    if found is None:
        known = ", ".join(session.scalars(select(MailingList.slug).order_by(MailingList.slug)))
        raise NotFound(
            f"There is no list {slug!r}" + (f" (lists: {known})." if known else "; no lists yet."),
            hint=f'Create it with `newsletter lists create {slug} --name "..."`, or see '
            "`newsletter lists`.",
        )
    return found


def create_list(
    session: Session,
    slug: str,
    name: str,
    description: str = "",
    *,
    double_opt_in: bool = False,
) -> MailingList:
    """Create a list. ``slug`` is lower-case letters, digits, - and _ (e.g. "weekly")."""
    if not _SLUG.fullmatch(slug):
        raise NewsletterError(
            f"{slug!r} cannot be a list slug: use lower-case letters, digits, - and _ "
            "(at most 64), starting with a letter or digit.",
            hint='For example: `newsletter lists create weekly --name "Weekly Brief"`.',
        )
    if find_list(session, slug) is not None:
        raise NewsletterError(f"The list {slug!r} already exists.", hint="See `newsletter lists`.")
    mailing_list = MailingList(
        slug=slug,
        name=name.strip() or slug,
        description=description.strip(),
        opt_in=(OptIn.DOUBLE if double_opt_in else OptIn.SINGLE).value,
        created_at=utcnow(),
    )
    session.add(mailing_list)
    session.flush()
    return mailing_list


def get_or_create_list(
    session: Session, slug: str, name: str | None = None, *, double_opt_in: bool = False
) -> MailingList:
    """The list with this slug, created (single opt-in unless asked) if missing."""
    return find_list(session, slug) or create_list(
        session, slug, name or slug, double_opt_in=double_opt_in
    )


def default_list(session: Session, slug: str, name: str = "") -> MailingList:
    """The project's default list (``[delivery] default_list``), created if missing.

    Created as a double opt-in list: people who sign up through the form must confirm
    their address first. (Staff adding or importing people they already have consent
    from are not asked to confirm: that is a choice of those commands, not of the list.)
    """
    return find_list(session, slug) or create_list(
        session, slug, name or slug, double_opt_in=True
    )


@dataclass(frozen=True)
class ListSummary:
    """A list and how many people are on it, by status."""

    slug: str
    name: str
    description: str
    opt_in: str
    subscribed: int
    unconfirmed: int
    unsubscribed: int
    recipients: int  # subscribed and subscriber-wide active: who a send reaches


def list_summaries(session: Session) -> list[ListSummary]:
    """Every list with its counts, in slug order."""

    def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    subscribed = Membership.status == MembershipStatus.SUBSCRIBED.value
    rows = session.execute(
        select(
            MailingList,
            count_if(subscribed),
            count_if(Membership.status == MembershipStatus.UNCONFIRMED.value),
            count_if(Membership.status == MembershipStatus.UNSUBSCRIBED.value),
            count_if(subscribed & (Subscriber.status == SubscriberStatus.ACTIVE.value)),
        )
        .outerjoin(Membership, Membership.list_id == MailingList.id)
        .outerjoin(Subscriber, Subscriber.id == Membership.subscriber_id)
        .group_by(MailingList.id)
        .order_by(MailingList.slug)
    ).all()
    return [
        ListSummary(m.slug, m.name, m.description, m.opt_in, int(a), int(b), int(c), int(d))
        for m, a, b, c, d in rows
    ]


# ---------------------------------------------------------------- subscribers


def get_subscriber(session: Session, ref: SubscriberRef) -> Subscriber:
    """Like :func:`find_subscriber` but raises :class:`NotFound` (with a hint)."""
    found = find_subscriber(session, ref)
    if found is None:
        raise NotFound(
            f"No subscriber {ref!r}.",
            hint="Add them with `newsletter subscribers add EMAIL --list SLUG`.",
        )
    return found


def record(
    session: Session,
    subscriber_id: int,
    list_id: int | None,
    old_status: str | None,
    new_status: str,
    source: Source | str,
    detail: str = "",
    at: datetime | None = None,
) -> HistoryEntry:
    """Write one history entry (the API functions call this for you)."""
    entry = HistoryEntry(
        subscriber_id=subscriber_id,
        list_id=list_id,
        old_status=old_status,
        new_status=str(new_status),
        source=Source(source).value,
        detail=detail,
        at=at or utcnow(),
    )
    session.add(entry)
    return entry


def _membership(session: Session, subscriber_id: int, list_id: int) -> Membership | None:
    return session.get(Membership, (subscriber_id, list_id))


def _change(
    session: Session,
    membership: Membership,
    status: MembershipStatus,
    source: Source | str,
    detail: str,
) -> bool:
    """Set a membership's status (and history); False if it already had it."""
    if membership.status == status.value:
        return False
    now = utcnow()
    record(session, membership.subscriber_id, membership.list_id, membership.status,
           status.value, source, detail, now)
    membership.status = status.value
    membership.changed_at = now
    membership.how = Source(source).value
    return True


def add_subscriber(
    session: Session,
    email: str,
    list_slug: str,
    *,
    name: str | None = None,
    status: MembershipStatus | str | None = None,
    source: Source | str = Source.COMMAND,
    detail: str = "",
    attributes: dict | None = None,
    resubscribe: bool = False,
) -> Membership:
    """Put ``email`` on a list, creating the subscriber if new; returns the membership.

    ``status`` defaults to ``subscribed`` on single opt-in lists and ``unconfirmed``
    on double opt-in lists (then call :func:`confirm` when the link is clicked).
    Someone already subscribed stays subscribed (never downgraded to unconfirmed).
    A given ``name`` replaces the stored one; ``attributes`` are merged in.

    The consent rule (:mod:`newsletter.store.consent`) holds for every caller: raises
    :class:`~newsletter.store.consent.ConsentRequired` (changing nothing) for someone
    who unsubscribed from the list unless ``resubscribe`` (only if they asked), and
    always for a bounced, complained or blocklisted address, or one erased on request.
    """
    mailing_list = get_list(session, list_slug)
    if status is None:
        status = (
            MembershipStatus.UNCONFIRMED if mailing_list.double_opt_in
            else MembershipStatus.SUBSCRIBED
        )
    status = MembershipStatus(status)
    source = Source(source)
    address = _email(email)
    now = utcnow()
    subscriber = session.scalars(
        select(Subscriber).where(Subscriber.email_key == email_key(address))
    ).one_or_none()
    membership = _membership(session, subscriber.id, mailing_list.id) if subscriber else None
    if subscriber is not None and status != MembershipStatus.UNSUBSCRIBED:
        list_status = membership.status if membership is not None else None
        why = refusal(subscriber.status, list_status, resubscribe=resubscribe)
        if why is not None:
            left = membership if why is Refusal.LEFT else None
            raise consent_error(
                subscriber.email, list_slug, why, subscriber_status=subscriber.status,
                since=left.changed_at if left else subscriber.status_changed_at,
                how=left.how if left else "",
            )
    if subscriber is None:
        if erased(session, address):
            raise erased_error(address)
        subscriber = Subscriber(
            email=address,
            email_key=email_key(address),
            name=(name or "").strip(),
            attributes=dict(attributes or {}),
            status=SubscriberStatus.ACTIVE.value,
            status_changed_at=now,
            created_at=now,
        )
        session.add(subscriber)
        session.flush()
    else:
        if name is not None and name.strip() and name.strip() != subscriber.name:
            subscriber.name = name.strip()
        if attributes:
            subscriber.attributes = {**(subscriber.attributes or {}), **attributes}
    if membership is None:
        membership = Membership(
            subscriber_id=subscriber.id,
            list_id=mailing_list.id,
            status=status.value,
            changed_at=now,
            how=source.value,
            created_at=now,
        )
        session.add(membership)
        record(session, subscriber.id, mailing_list.id, None, status.value, source, detail, now)
    elif not (
        membership.status == MembershipStatus.SUBSCRIBED
        and status == MembershipStatus.UNCONFIRMED
    ):
        _change(session, membership, status, source, detail)
    session.flush()
    return membership


def subscribe(
    session: Session,
    email: str,
    list_slug: str,
    *,
    name: str | None = None,
    source: Source | str = Source.COMMAND,
    detail: str = "",
    resubscribe: bool = False,
) -> Membership:
    """Subscribe ``email`` to a list at once (no confirmation step).

    Someone who unsubscribed comes back only with ``resubscribe`` (see :func:`add_subscriber`).
    """
    return add_subscriber(
        session, email, list_slug, name=name, status=MembershipStatus.SUBSCRIBED,
        source=source, detail=detail, resubscribe=resubscribe,
    )


def confirm(
    session: Session,
    subscriber: SubscriberRef,
    list_slug: str,
    *,
    source: Source | str = Source.WEB_FORM,
    detail: str = "",
) -> Membership:
    """Confirm a double opt-in membership: it becomes ``subscribed``.

    Raises :class:`NotFound` if the person never signed up to that list.
    """
    found = get_subscriber(session, subscriber)
    mailing_list = get_list(session, list_slug)
    membership = _membership(session, found.id, mailing_list.id)
    if membership is None:
        raise NotFound(f"{found.email} never signed up to {list_slug!r}.")
    _change(session, membership, MembershipStatus.SUBSCRIBED, source, detail)
    session.flush()
    return membership


def unsubscribe(
    session: Session,
    subscriber: SubscriberRef,
    list_slug: str | None = None,
    *,
    source: Source | str,
    detail: str = "",
) -> list[Membership]:
    """Unsubscribe from one list (or, with ``list_slug=None``, from every list).

    Returns the memberships that changed (empty if already unsubscribed).
    The membership row and its history are kept.
    """
    found = get_subscriber(session, subscriber)
    query = select(Membership).where(Membership.subscriber_id == found.id)
    if list_slug is not None:
        query = query.where(Membership.list_id == get_list(session, list_slug).id)
    changed = [
        membership
        for membership in session.scalars(query)
        if _change(session, membership, MembershipStatus.UNSUBSCRIBED, source, detail)
    ]
    session.flush()
    return changed


def set_subscriber_status(
    session: Session,
    subscriber: SubscriberRef,
    status: SubscriberStatus | str,
    *,
    source: Source | str,
    detail: str = "",
) -> Subscriber:
    """Set the subscriber-wide status: bounced, complained, blocklisted (or back to active).

    Non-active subscribers receive nothing from any list. An email address not yet
    known is added (with no lists) so that later imports skip it too, unless it was
    erased on request (then nothing is stored: it can never be added anyway).
    """
    status = SubscriberStatus(status)
    found = find_subscriber(session, subscriber)
    now = utcnow()
    if found is None:
        if not isinstance(subscriber, str):
            get_subscriber(session, subscriber)  # raises NotFound
        address = _email(str(subscriber))
        if erased(session, address):
            raise erased_error(address)
        found = Subscriber(
            email=address, email_key=email_key(address), name="", attributes={},
            status=status.value, status_changed_at=now, created_at=now,
        )
        session.add(found)
        session.flush()
        record(session, found.id, None, None, status.value, source, detail, now)
        return found
    if found.status != status.value:
        record(session, found.id, None, found.status, status.value, source, detail, now)
        found.status = status.value
        found.status_changed_at = now
        session.flush()
    return found


def memberships(session: Session, subscriber: SubscriberRef) -> list[Membership]:
    """A subscriber's memberships (with ``.mailing_list`` loaded), by list slug."""
    found = get_subscriber(session, subscriber)
    return list(
        session.scalars(
            select(Membership)
            .join(MailingList)
            .where(Membership.subscriber_id == found.id)
            .order_by(MailingList.slug)
        )
    )


def history(session: Session, subscriber: SubscriberRef) -> list[HistoryEntry]:
    """Every recorded status change of a subscriber, oldest first.

    Entries with ``list_id`` None are subscriber-wide (bounced, complained, ...).
    """
    found = get_subscriber(session, subscriber)
    return list(
        session.scalars(
            select(HistoryEntry)
            .where(HistoryEntry.subscriber_id == found.id)
            .order_by(HistoryEntry.at, HistoryEntry.id)
        )
    )
