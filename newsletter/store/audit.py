"""The audit log: who saved, tested, scheduled, sent, cancelled, imported, exported or
logged in, when, and to what. Rows are only ever added."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from .models import Base, UTCDateTime, utcnow

ACTIONS = ("login", "login failed", "logout", "saved", "created", "tested", "scheduled",
           "password changed",
           "sent", "cancelled", "imported", "exported", "subscribed", "unsubscribed",
           "user added", "user removed", "role changed", "review link", "reviewed",
           "forgot a subscriber")


class AuditEntry(Base):
    """One thing someone did."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(320), index=True)
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(320), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


def record_action(session: Session, actor: str, action: str, target: str = "",
                  detail: str = "") -> AuditEntry:
    """Add one entry (the caller commits). ``actor`` is an address or an OS user name."""
    entry = AuditEntry(at=utcnow(), actor=actor[:320], action=action[:40], target=target[:320],
                       detail=detail)
    session.add(entry)
    return entry


def audit_entries(session: Session, *, since: datetime | None = None, actor: str | None = None,
                  limit: int = 1000) -> list[AuditEntry]:
    """The newest entries first, at most ``limit``, optionally since a time or by one actor."""
    query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    return list(session.scalars(query))
