"""Finding subscribers by part of their address or name."""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from .models import Subscriber


def search_subscribers(session: Session, text: str, limit: int = 50) -> list[Subscriber]:
    """Subscribers whose address or name contains ``text`` (any case), by address."""
    words = text.strip().lower()
    if not words:
        return []
    pattern = "%" + words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    query = (select(Subscriber)
             .where(or_(func.lower(Subscriber.email).like(pattern, escape="\\"),
                        func.lower(Subscriber.name).like(pattern, escape="\\")))
             .order_by(Subscriber.email_key).limit(limit))
    return list(session.scalars(query))
