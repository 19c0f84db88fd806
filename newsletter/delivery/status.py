"""Campaigns already started: their status, and cancelling a scheduled one."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import make_url

from ..errors import NewsletterError
from ..project import Project
from ..store import open_project_database
from ..store.database import project_database
from . import campaign as state
from .leases import end_dead_leases
from .models import Campaign, CampaignStatus
from .overview import NOT_SENT, CampaignOverview, overview
from .sendreport import problem_error
from .transports import DeliveryProblem, Transport, open_transport


def sent_issue_names(project: Project) -> set[str]:
    """Names of the issues sent to a list: every batch of some send accepted.

    Opens the database only if there is one: a project that has never stored a
    subscriber (a SQLite file not made yet) has sent nothing, and asking must not
    create subscribers.db.
    """
    url = make_url(project_database(project).url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return set()
    database = open_project_database(project)
    try:
        with database.session() as session:
            return set(session.scalars(
                select(Campaign.issue_name).where(Campaign.status == CampaignStatus.SENT)
            ))
    finally:
        database.dispose()


def campaigns_status(project: Project, issue_path: Path | None = None) -> list[
        CampaignOverview]:
    """Campaigns (of one issue file, if given), newest first, with counts per batch state."""
    database = open_project_database(project)
    try:
        found = overview(database.engine, issue_path.stem if issue_path else None)
        # Senders killed on this machine hold nothing: show their batches as they are.
        if any(end_dead_leases(database.engine, item.campaign.id) for item in found):
            found = overview(database.engine, issue_path.stem if issue_path else None)
        return found
    finally:
        database.dispose()


def _when(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def status_document(found: list[CampaignOverview],
                    events: dict[int, dict[str, int]]) -> dict[str, Any]:
    """`newsletter status --json`: every send with its state and counts, for scripts.

    ``recipients`` counts frozen recipients per batch state (``submitting`` is shown
    as ``ambiguous`` to people), except those refused for good, counted under ``not sent``
    (so ``accepted`` is what the transport took, and the counts add up to the frozen
    total); ``messages`` is present for SMTP sends only; ``not_delivered`` names the
    recipients refused for good (at most 50 per send).
    """
    sends = []
    for item in found:
        c = item.campaign
        sends.append({
            "issue": c.issue_name, "list": c.list_slug, "transport": c.transport,
            "status": c.status, "subject": c.subject, "recipients_total": c.recipient_count,
            "scheduled_for": _when(c.send_at), "started": _when(c.created_at),
            "finished": _when(c.finished_at),
            "batches": {key: count.batches for key, count in item.counts.items()
                        if key != NOT_SENT},
            "recipients": {key: count.recipients for key, count in item.counts.items()},
            "messages": asdict(item.messages) if item.messages is not None else None,
            "not_delivered": [{"batch": number, "email": email, "why": why}
                              for number, email, why in item.not_delivered],
            "events": events.get(c.id, {}),
        })
    return {"sends": sends}


@dataclass(frozen=True)
class CancelResult:
    """A cancelled scheduled send."""

    issue_name: str
    list_slug: str
    send_at: dt.datetime
    recipients: int


def cancel_send(
    project: Project,
    issue_path: Path,
    list_slug: str | None = None,
    *,
    transport: Transport | None = None,
    now: dt.datetime | None = None,
) -> CancelResult:
    """Cancel a scheduled send of an issue to a list (POST /v3/user/scheduled_sends).

    SendGrid can cancel until 10 minutes before the send time. Afterwards the
    campaign is marked cancelled, so the issue can be sent or scheduled again.
    """
    slug = list_slug or project.config.delivery.default_list
    database = open_project_database(project)
    try:
        with database.session() as session:
            found = state.find_campaign(session, issue_path.stem, slug, "sendgrid")
        if found is None or not found.sendgrid_batch_id or found.send_at is None:
            raise NewsletterError(
                f"There is no scheduled send of {issue_path.stem} to {slug!r}.",
                hint=f"See `newsletter status {issue_path}`.",
            )
        if found.status == CampaignStatus.CANCELLED:
            raise NewsletterError(
                f"The scheduled send of {issue_path.stem} to {slug!r} was already cancelled.",
                hint=f"See `newsletter status {issue_path}`.",
            )
        now = now or dt.datetime.now(dt.UTC)
        if found.send_at - now < dt.timedelta(minutes=10):
            raise NewsletterError(
                f"It is too late to cancel: the send starts at {found.send_at:%Y-%m-%d %H:%M} "
                "UTC, and SendGrid cancels only until 10 minutes before.",
                hint="The issue goes out as scheduled.",
            )
        chosen = transport or open_transport(project, "sendgrid",
                                             timeout=project.config.delivery.timeout)
        try:
            chosen.cancel_scheduled(found.sendgrid_batch_id)
        except DeliveryProblem as problem:
            raise problem_error(problem) from None
        finally:
            if transport is None:
                chosen.close()
        state.set_status(database.engine, found.id, CampaignStatus.CANCELLED)
        return CancelResult(found.issue_name, slug, found.send_at, found.recipient_count)
    finally:
        database.dispose()
