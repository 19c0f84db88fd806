"""Tables of the web service: webhook event ids (dedupe), per-campaign event counts, sync state.

They share the store's declarative ``Base`` (one metadata, one database); migration
"0003" creates them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..store.models import Base, UTCDateTime, utcnow


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
