"""Putting a report together: find the campaign of an issue, read its figures (from the
webhook's events, else from SendGrid's statistics), and a list's health over time."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..delivery.models import Campaign
from ..delivery.problems import API_KEY_ENV
from ..errors import NewsletterError
from ..issue import load_issue
from ..project import Project
from ..store import open_project_database
from ..store.engagement import active_member_ids, engaged_subscribers
from ..store.growth import fold_history
from ..store.models import MailingList
from . import figures as fig

if TYPE_CHECKING:
    from ..delivery.sendgrid_client import SendGridClient


@dataclass
class IssueReport(fig.Report):
    """A campaign report plus where its figures came from, in plain words."""

    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "notes": self.notes}


def _find_campaign(session: Session, issue_name: str, list_slug: str | None) -> Campaign:
    query = select(Campaign).where(Campaign.issue_name == issue_name)
    if list_slug:
        query = query.where(Campaign.list_slug == list_slug)
    found = session.scalars(query.order_by(Campaign.transport.desc(), Campaign.id)).all()
    found = [c for c in found if c.transport == "sendgrid"] or list(found)
    if not found:
        to = f" to {list_slug!r}" if list_slug else ""
        raise NewsletterError(
            f"{issue_name} has not been sent{to}, so there is nothing to report yet.",
            hint="Send it with `newsletter send FILE --list LIST`; `newsletter status` "
            "shows what was sent.",
        )
    lists = sorted({c.list_slug for c in found})
    if len(lists) > 1:
        raise NewsletterError(
            f"{issue_name} was sent to several lists: {', '.join(lists)}.",
            hint=f"Say which one, e.g. `newsletter report FILE --list {lists[0]}`.",
        )
    return found[0]


def issue_report(project: Project, issue_path: Path, list_slug: str | None = None, *,
                 weeks: int = 26, client: SendGridClient | None = None,
                 now: dt.datetime | None = None) -> IssueReport:
    """Everything `newsletter report FILE` shows, for the issue's campaign to ``list_slug``."""
    issue = load_issue(issue_path)
    now = now or dt.datetime.now(dt.UTC)
    database = open_project_database(project)
    try:
        fold_history(database)
        with database.session() as session:
            campaign = _find_campaign(session, issue.name, list_slug)
            figures = fig.campaign_figures(session, campaign)
            report = IssueReport(
                figures, fig.story_clicks(session, campaign.id, issue),
                fig.first_hours(session, campaign),
                [fig.campaign_figures(session, c, reasons=False)
                 for c in fig.previous_campaigns(session, campaign)],
                fig.list_growth(session, campaign.list_slug, weeks, now),
            )
            session.commit()  # the unique readers counted, kept for the next report
    finally:
        database.dispose()
    if figures.source == "none":
        report.notes.append(_fallback(figures, client, now))
    elif figures.source == "counts":
        report.notes.append('newsletter.toml says privacy = "aggregate": opens and clicks are '
                            "totals, not unique readers.")
    return report


def _fallback(figures: fig.Figures, client: SendGridClient | None, now: dt.datetime) -> str:
    if client is None and not os.environ.get(API_KEY_ENV, "").strip():
        return ("No webhook events arrived for this issue, and SENDGRID_API_KEY is not set, "
                "so SendGrid's statistics could not be read either. Set it (a key with "
                "'Stats' read access) or host the webhook (`newsletter serve`).")
    # Imported here: the SendGrid client (and the sendgrid package) is needed only for
    # a campaign without webhook events; every other report starts without it.
    from ..delivery.sendgrid_client import SendGridClient
    from .fallback import add_sendgrid_totals

    own = client or SendGridClient(os.environ[API_KEY_ENV].strip())
    try:
        problem = add_sendgrid_totals(figures, own, dt.date.fromisoformat(figures.sent_at[:10]),
                                      now.date())
    finally:
        if client is None:
            own.close()
    if problem:
        return f"No webhook events arrived for this issue. {problem}"
    return ("No webhook events arrived for this issue: these are totals from SendGrid's "
            "statistics for its category, not unique readers (someone who opens on two "
            "days counts twice), and there is no click map.")


# ---------------------------------------------------------------- a list's health


@dataclass
class ListHealth:
    """`newsletter report --list SLUG`: growth, recent readers and never-openers."""

    list_slug: str
    members: int  # subscribed and active now
    issues: list[str]  # the last 8 issues sent to the list, oldest first
    readers: int  # members who opened (as a person) or clicked any of those issues
    never_opened: int  # members who did neither: candidates for a re-engagement email
    weeks: list[fig.Week]
    per_reader: bool = True  # False: privacy = "aggregate" keeps no per-reader rows

    @property
    def reader_share(self) -> float | None:
        """Readers per member."""
        return round(self.readers / self.members, 4) if self.members else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"list": self.list_slug, "members": self.members, "issues": self.issues,
                "readers": self.readers, "reader_share": self.reader_share,
                "never_opened": self.never_opened, "per_reader": self.per_reader,
                "growth": [{**asdict(w), "net": w.net} for w in self.weeks]}


def list_health(project: Project, list_slug: str, weeks: int = 26,
                now: dt.datetime | None = None) -> ListHealth:
    """The list's growth over ``weeks`` weeks and how many members read the last 8 issues."""
    now = now or dt.datetime.now(dt.UTC)
    database = open_project_database(project)
    try:
        fold_history(database)
        with database.session() as session:
            list_id = session.scalar(select(MailingList.id).where(MailingList.slug == list_slug))
            if list_id is None:
                raise NewsletterError(f"There is no list {list_slug!r}.",
                                      hint="See `newsletter lists`.")
            campaigns = session.scalars(
                select(Campaign).where(Campaign.list_slug == list_slug)
                .order_by(Campaign.created_at.desc()).limit(fig.PREVIOUS)).all()
            members = active_member_ids(session, list_id)
            engaged = engaged_subscribers(session, [c.id for c in campaigns]) & members
            per_reader = bool(engaged) or not any(
                fig.campaign_figures(session, c, reasons=False).source == "counts"
                for c in campaigns)
            issues = [c.issue_name for c in reversed(campaigns)]
            health = ListHealth(list_slug, len(members), issues, len(engaged),
                                len(members) - len(engaged),
                                fig.list_growth(session, list_slug, weeks, now), per_reader)
            session.commit()  # the unique readers counted, kept for the next report
            return health
    finally:
        database.dispose()
