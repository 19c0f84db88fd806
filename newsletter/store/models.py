"""Tables of the subscriber store: subscribers, lists, memberships and their history,
plus the bookkeeping of SendGrid events (webhook event ids, per-campaign counts, sync state).

Statuses and sources are ``str`` enums, stored as their plain string values, so
``Subscriber.status == "active"`` and ``Subscriber.status == SubscriberStatus.ACTIVE``
are the same test. All times are timezone-aware UTC datetimes on every database.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class SubscriberStatus(StrEnum):
    """Subscriber-wide status. Only ``active`` subscribers ever receive mail from any list."""

    ACTIVE = "active"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    BLOCKLISTED = "blocklisted"


class MembershipStatus(StrEnum):
    """A subscriber's status on one list."""

    UNCONFIRMED = "unconfirmed"  # double opt-in: waiting for the confirmation click
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"


class OptIn(StrEnum):
    """How people join a list: at once (single) or after confirming by email (double)."""

    SINGLE = "single"
    DOUBLE = "double"


class Source(StrEnum):
    """Where a status change came from; recorded in the history with every change."""

    IMPORT = "import"
    COMMAND = "command"
    WEB_FORM = "web form"
    UNSUBSCRIBE_LINK = "unsubscribe link"
    WEBHOOK = "webhook"
    SYNC = "sync"
    SMTP = "smtp"  # an SMTP server refused a recipient during a send


def table(model: type[Any]) -> Table:
    """A mapped class's Core table, for bulk statements (typed: ``__table__`` is not)."""
    return cast(Table, model.__table__)


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A DateTime that always stores UTC and always returns aware UTC datetimes.

    SQLite has no time zones: without this it would hand back naive datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC) if dialect.name != "sqlite" else value
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Stable constraint names so later migrations (and SQLite batch mode) can refer to them.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of the store's tables (``Base.metadata``)."""

    metadata = MetaData(naming_convention=NAMING)


def email_key(email: str) -> str:
    """The unique lookup key of a normalised address: lower-cased throughout."""
    return email.lower()


class Subscriber(Base):
    """One person, by normalised email address.

    ``email`` keeps the spelling first given (domain lower-cased, see
    :func:`newsletter.emails.normalise_email`); ``email_key`` is unique.
    """

    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    # email_key(email): addresses differing only in letter case are one person.
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default=SubscriberStatus.ACTIVE.value)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(back_populates="subscriber")

    def __repr__(self) -> str:
        return f"<Subscriber {self.id} {self.email!r} {self.status}>"


class MailingList(Base):
    """A list people subscribe to, e.g. slug ``weekly``."""

    __tablename__ = "lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    opt_in: Mapped[str] = mapped_column(String(10), default=OptIn.SINGLE.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def double_opt_in(self) -> bool:
        return self.opt_in == OptIn.DOUBLE

    def __repr__(self) -> str:
        return f"<MailingList {self.slug!r}>"


class Membership(Base):
    """One subscriber on one list, with its status and when/how it last changed."""

    __tablename__ = "memberships"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    list_id: Mapped[int] = mapped_column(
        ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(20))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    how: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    subscriber: Mapped[Subscriber] = relationship(back_populates="memberships")
    mailing_list: Mapped[MailingList] = relationship()

    __table_args__ = (
        # Recipient streaming: subscribed members of one list, in subscriber id order.
        Index("ix_memberships_list_status_subscriber", "list_id", "status", "subscriber_id"),
    )


# The condition of the partial index on subscriber_history; a query must repeat it, as
# written, for SQLite to use the index.
LEAVING = "new_status IN ('unsubscribed', 'bounced', 'complained')"


class HistoryEntry(Base):
    """One recorded change of status: what changed, when, from where, and why.

    ``list_id`` is None for subscriber-wide changes (bounced, complained, blocklisted).
    ``old_status`` is None when a membership or subscriber was created.
    """

    __tablename__ = "subscriber_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    list_id: Mapped[int | None] = mapped_column(
        ForeignKey("lists.id", ondelete="CASCADE"), nullable=True, index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    old_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    new_status: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")

    mailing_list: Mapped[MailingList | None] = relationship()

    __table_args__ = (
        # Who left a list, bounced or complained when (reports). Partial: the rows of an
        # import (all "subscribed") cost it nothing.
        Index("ix_subscriber_history_leaving", "list_id", "new_status", "at",
              sqlite_where=text(LEAVING), postgresql_where=text(LEAVING)),
    )

    def __repr__(self) -> str:
        return f"<HistoryEntry {self.subscriber_id} {self.old_status}->{self.new_status}>"


# ---------------------------------------------------------------- SendGrid events
# Migration "0003" creates these.


class WebhookEvent(Base):
    """The id of one SendGrid event already applied: a retried batch is skipped by these."""

    __tablename__ = "webhook_events"

    sg_event_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class CampaignEventCount(Base):
    """How many events of one kind SendGrid reported for one campaign.

    ``event`` is SendGrid's event name (delivered, open, click, bounce, ...), except
    that Apple Mail Privacy Protection's machine opens count as ``machine_open``.
    """

    __tablename__ = "campaign_event_counts"

    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class SyncState(Base):
    """One remembered value of ``newsletter subscribers sync`` (e.g. the last sync time)."""

    __tablename__ = "sync_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# ---------------------------------------------------------------- what readers did
# Migration "0007" creates these; newsletter.store.engagement reads and writes them.


class ReaderEvent(Base):
    """One reader's opens, machine opens or clicks on one link, in one campaign.

    ``kind`` is ``open`` (a person), ``machine_open`` (Apple Mail Privacy Protection
    fetching the images) or ``click``; ``link_id`` is a :class:`CampaignLink` for clicks
    and 0 otherwise. Not kept at all when newsletter.toml says ``privacy = "aggregate"``.
    """

    __tablename__ = "reader_events"

    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), primary_key=True)
    link_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    first_at: Mapped[datetime] = mapped_column(UTCDateTime())
    count: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (Index("ix_reader_events_subscriber", "subscriber_id"),)


class CampaignLink(Base):
    """One link clicked in one campaign, as SendGrid reported it, with its total clicks."""

    __tablename__ = "campaign_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(String(2000))
    clicks: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (UniqueConstraint("campaign_id", "url"),)


class CampaignHourCount(Base):
    """How many events of one kind arrived in one hour (``hour``: hours since 1970 UTC)."""

    __tablename__ = "campaign_hour_counts"

    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), primary_key=True)
    hour: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class ListDayCount(Base):
    """How many members joined (``status`` subscribed) or left (unsubscribed) one list on
    one day (UTC), folded in from the history by :mod:`newsletter.store.growth`."""

    __tablename__ = "list_day_counts"

    list_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class CampaignReaders(Base):
    """A campaign's unique openers, machine openers and clickers, counted from
    ``reader_events`` by :mod:`newsletter.store.engagement` and reused while still true:
    ``events`` is the campaign's opens and clicks at counting time (a new one makes it
    stale), ``deletions`` goes up (a trigger) whenever a reader row is deleted and
    ``deletions_seen`` is its value at counting time."""

    __tablename__ = "campaign_readers"

    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    events: Mapped[int] = mapped_column(Integer)
    deletions: Mapped[int] = mapped_column(Integer, default=0)
    deletions_seen: Mapped[int] = mapped_column(Integer, default=0)
    openers: Mapped[int] = mapped_column(Integer, default=0)
    machine_openers: Mapped[int] = mapped_column(Integer, default=0)
    clickers: Mapped[int] = mapped_column(Integer, default=0)
