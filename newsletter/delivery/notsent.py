"""The one rule of "not sent": a campaign's recipients refused for good, which are its
``bounced`` delivery records (left out by .refusals, or refused by an SMTP server).

Kept apart from .overview so that `newsletter report` counts them without loading the
sending side (leases, per-message records): both count with :func:`refused`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from ..store.models import table
from .models import Batch, BatchDelivery, DeliveryState

batches = table(Batch)
deliveries = table(BatchDelivery)


def refused(campaign_id: int) -> Select[tuple[Any, int]]:
    """(batch id, n) of a campaign's recipients refused for good; group it by batch id, or
    count it whole."""
    return (select(deliveries.c.batch_id, func.count().label("n"))
            .where(deliveries.c.state == DeliveryState.BOUNCED.value,
                   deliveries.c.batch_id.in_(
                       select(batches.c.id).where(batches.c.campaign_id == campaign_id))))


def not_sent_count(session: Session, campaign_id: int) -> int:
    """How many of a campaign's frozen recipients were refused for good (never handed to a
    transport, or refused by an SMTP server), in one aggregate query: what
    ``overview.state_counts(...)[NOT_SENT].recipients`` counts."""
    return int(session.scalar(refused(campaign_id).with_only_columns(func.count())) or 0)
