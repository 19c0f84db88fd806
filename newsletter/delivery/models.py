"""Tables of sending: a campaign (one issue to one list) and its frozen, numbered batches.

A batch's recipients are frozen when the campaign starts, as their subscriber
ids packed into ``BatchRecipients.recipient_ids`` (8-byte little-endian
integers, ascending): a later sign-up is never added, and a resumed send
reaches the same people. The ids live in their own table so that the state
changes written around every request touch only small rows.
"""

from __future__ import annotations

import sys
from array import array
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..store.models import Base, UTCDateTime, utcnow


class BatchState(StrEnum):
    """Where one batch is. ``submitting`` whose lease ran out means 'maybe sent'."""

    PENDING = "pending"
    SUBMITTING = "submitting"
    ACCEPTED = "accepted"
    FAILED = "failed"


class CampaignStatus(StrEnum):
    """Where a whole campaign is."""

    SENDING = "sending"  # batches left to send (or a send is running)
    SENT = "sent"  # every batch accepted
    CANCELLED = "cancelled"  # a scheduled send was cancelled


class Campaign(Base):
    """One issue sent to one list through one transport."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_name: Mapped[str] = mapped_column(String(200))
    list_slug: Mapped[str] = mapped_column(String(64))
    transport: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default=CampaignStatus.SENDING.value)
    recipient_count: Mapped[int] = mapped_column(Integer, default=0)
    batch_count: Mapped[int] = mapped_column(Integer, default=0)
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sendgrid_batch_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (UniqueConstraint("issue_name", "list_slug", "transport"),)

    def __repr__(self) -> str:
        return f"<Campaign {self.id} {self.issue_name}→{self.list_slug} {self.status}>"


class Batch(Base):
    """Up to 1000 frozen recipients of a campaign, sent in one request."""

    __tablename__ = "campaign_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12), default=BatchState.PENDING.value)
    recipient_count: Mapped[int] = mapped_column(Integer)
    first_id: Mapped[int] = mapped_column(Integer)
    last_id: Mapped[int] = mapped_column(Integer)
    # How many of the frozen recipients were in the last request (fewer if some left since).
    sent_count: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The sender that last took the batch ("host:pid:token"), and until when it holds
    # it. A running sender renews its leases; a batch in submitting whose lease has
    # run out (or was given up) is ambiguous, one with a live lease is in flight.
    owner: Mapped[str | None] = mapped_column(String(120), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        UniqueConstraint("campaign_id", "number"),
        Index("ix_campaign_batches_campaign_state", "campaign_id", "state"),
    )

    def __repr__(self) -> str:
        return f"<Batch {self.campaign_id}/{self.number} {self.state} {self.recipient_count}>"


class DeliveryState(StrEnum):
    """One message of a batch sent over SMTP, which answers each message on its own."""

    SENDING = "sending"  # its final dot is about to go, or went and no answer is written
    ACCEPTED = "accepted"  # the server said 250 after the final dot
    AMBIGUOUS = "ambiguous"  # the connection broke after the final dot: maybe delivered
    # The server refused the recipient (5xx to RCPT TO); or, for every transport, the
    # send left them out because no mail server accepts their address (see .refusals).
    BOUNCED = "bounced"


class BatchDelivery(Base):
    """The outcome of one recipient's message in a batch (SMTP; SendGrid answers for a
    whole batch), and, for every transport, the recipients a batch left out for good."""

    __tablename__ = "batch_deliveries"

    batch_id: Mapped[int] = mapped_column(
        ForeignKey("campaign_batches.id", ondelete="CASCADE"), primary_key=True
    )
    subscriber_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(12))
    detail: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class BatchRecipients(Base):
    """The frozen subscriber ids of one batch (see :func:`unpack_ids`)."""

    __tablename__ = "campaign_batch_recipients"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient_ids: Mapped[bytes] = mapped_column(LargeBinary)

    def ids(self) -> list[int]:
        """The frozen subscriber ids, ascending."""
        return unpack_ids(self.recipient_ids)


def pack_ids(ids: list[int]) -> bytes:
    """Subscriber ids as 8-byte little-endian integers."""
    packed = array("q", ids)
    if packed.itemsize != 8:  # pragma: no cover - every supported platform has 8-byte q
        raise RuntimeError("array('q') is not 8 bytes here")
    if sys.byteorder != "little":  # pragma: no cover
        packed.byteswap()
    return packed.tobytes()


def unpack_ids(data: bytes) -> list[int]:
    """The inverse of :func:`pack_ids`."""
    packed = array("q")
    packed.frombytes(data)
    if sys.byteorder != "little":  # pragma: no cover
        packed.byteswap()
    return packed.tolist()
