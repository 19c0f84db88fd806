"""The numbers of a report, computed from the store: one campaign, its stories, its first
72 hours, the issues before it, and the list's growth week by week.

Everything here is plain data (dataclasses of ints, floats and strings), so the
terminal table, the HTML report, ``--json`` and the CSV all show the same figures.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import case, func, select, text
from sqlalchemy.orm import Session

from ..delivery.models import Campaign
from ..delivery.notsent import not_sent_count
from ..issue import Issue, url_key
from ..store.engagement import (
    CLICK,
    MACHINE_OPEN,
    OPEN,
    campaign_links,
    counted_readers,
    has_reader_rows,
    hourly,
    unique_clickers,
)
from ..store.events import campaign_stats
from ..store.growth import JOINED, LEFT, day_counts
from ..store.models import LEAVING, HistoryEntry, MailingList, Membership

HOURS = 72
PREVIOUS = 8


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass
class Figures:
    """The headline figures of one campaign (one issue sent to one list)."""

    campaign_id: int
    issue: str
    list_slug: str
    subject: str
    sent_at: str  # ISO 8601, UTC
    recipients: int  # handed to the transport: frozen minus not_sent
    source: str  # "webhook": per-reader events; "counts": privacy = aggregate; "sendgrid"; "none"
    delivered: int = 0
    bounced_hard: int = 0
    bounced_soft: int = 0
    blocked: int = 0
    opens: int = 0  # unique human openers (or SendGrid's unique_opens)
    opens_total: int = 0
    machine_opens: int = 0  # readers whose mail app fetched the images by itself
    machine_opens_total: int = 0
    clicks: int = 0  # unique clickers
    clicks_total: int = 0
    unsubscribes: int = 0
    unsubscribe_reasons: dict[str, int] = field(default_factory=dict)
    spam_reports: int = 0
    not_sent: int = 0  # frozen, but left out for good (as `newsletter status` counts them)

    @property
    def click_rate(self) -> float | None:
        """Unique clickers per delivered email."""
        return _rate(self.clicks, self.delivered)

    @property
    def click_to_open(self) -> float | None:
        """Unique clickers per unique human opener."""
        return _rate(self.clicks, self.opens)

    @property
    def open_rate(self) -> float | None:
        """Unique human openers per delivered email."""
        return _rate(self.opens, self.delivered)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with the rates."""
        return {**asdict(self), "open_rate": self.open_rate, "click_rate": self.click_rate,
                "click_to_open": self.click_to_open}


@dataclass(frozen=True)
class Story:
    """One item of the issue (or "other links") with its clicks and unique clickers."""

    index: int  # 1-based as people count; 0 for links that belong to no story
    title: str
    url: str
    clicks: int
    clickers: int


@dataclass(frozen=True)
class Week:
    """One week of a list's growth, from the subscriber history."""

    start: str  # YYYY-MM-DD, a Monday
    joined: int
    left: int
    bounced: int

    @property
    def net(self) -> int:
        """Joined minus left minus bounced."""
        return self.joined - self.left - self.bounced


@dataclass
class Report:
    """Everything ``newsletter report FILE`` shows."""

    figures: Figures
    stories: list[Story]
    hours: dict[str, list[int]]  # kind → 72 hourly counts from the send
    previous: list[Figures]  # oldest first, without this one
    weeks: list[Week]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "campaign": self.figures.as_dict(),
            "stories": [asdict(s) for s in self.stories],
            "hours": self.hours,
            "previous": [f.as_dict() for f in self.previous],
            "growth": [{**asdict(w), "net": w.net} for w in self.weeks],
        }


# ---------------------------------------------------------------- one campaign


def _sent_at(campaign: Campaign) -> dt.datetime:
    return campaign.send_at or campaign.created_at


def _next_campaign_at(session: Session, campaign: Campaign) -> dt.datetime | None:
    return session.scalar(
        select(func.min(Campaign.created_at)).where(
            Campaign.list_slug == campaign.list_slug, Campaign.created_at > campaign.created_at,
            Campaign.transport == campaign.transport)
    )


def unsubscribe_reasons(session: Session, campaign: Campaign) -> dict[str, int]:
    """Who left the list between this campaign and the next one, by how they left."""
    list_id = session.scalar(select(MailingList.id).where(MailingList.slug == campaign.list_slug))
    if list_id is None:
        return {}
    start, end = _sent_at(campaign), _next_campaign_at(session, campaign)
    query = (select(HistoryEntry.source, HistoryEntry.detail)
             .where(HistoryEntry.list_id == list_id, HistoryEntry.new_status == "unsubscribed",
                    HistoryEntry.old_status == "subscribed", HistoryEntry.at >= start,
                    text(LEAVING)))  # repeated as written: SQLite then uses the index
    if end is not None:
        query = query.where(HistoryEntry.at < end)
    reasons: Counter[str] = Counter()
    for source, detail in session.execute(query):
        reasons[_reason(str(source), str(detail or ""))] += 1
    return dict(reasons.most_common())


def _reason(source: str, detail: str) -> str:
    if source == "unsubscribe link":
        return f"unsubscribe link ({detail})" if detail else "unsubscribe link"
    if source in ("webhook", "sync") and detail.startswith("SendGrid "):
        event = detail.split(";", 1)[0].removeprefix("SendGrid ")
        return {"unsubscribe": "SendGrid unsubscribe", "group_unsubscribe":
                "SendGrid group unsubscribe", "dropped": "SendGrid suppression"}.get(
                    event, f"SendGrid {event}")
    return source


def campaign_figures(session: Session, campaign: Campaign, *, reasons: bool = True) -> Figures:
    """The headline figures of one campaign from the webhook's events (``source`` says
    "none" when no event arrived, and "counts" when only counts were kept)."""
    counts = campaign_stats(session, campaign.id)
    not_sent = not_sent_count(session, campaign.id)
    figures = Figures(
        campaign.id, campaign.issue_name, campaign.list_slug, campaign.subject,
        _sent_at(campaign).isoformat(), campaign.recipient_count - not_sent,
        source="none" if not counts else "webhook",
        delivered=counts.get("delivered", 0), bounced_hard=counts.get("bounce", 0),
        bounced_soft=counts.get("deferred", 0), blocked=counts.get("blocked", 0),
        opens_total=counts.get(OPEN, 0), machine_opens_total=counts.get(MACHINE_OPEN, 0),
        clicks_total=counts.get(CLICK, 0),
        unsubscribes=counts.get("unsubscribe", 0) + counts.get("group_unsubscribe", 0),
        spam_reports=counts.get("spamreport", 0), not_sent=not_sent,
    )
    if counts and has_reader_rows(session, campaign.id):
        unique = counted_readers(session, campaign.id, figures.opens_total
                                 + figures.machine_opens_total + figures.clicks_total)
        figures.opens, figures.machine_opens = unique[OPEN], unique[MACHINE_OPEN]
        figures.clicks = unique[CLICK]
    elif counts and (figures.opens_total or figures.clicks_total):
        figures.source = "counts"  # privacy = "aggregate": totals only
        figures.opens, figures.machine_opens = figures.opens_total, figures.machine_opens_total
        figures.clicks = figures.clicks_total
    if reasons:
        figures.unsubscribe_reasons = unsubscribe_reasons(session, campaign)
        figures.unsubscribes = max(figures.unsubscribes, sum(figures.unsubscribe_reasons.values()))
    return figures


def story_clicks(session: Session, campaign_id: int, issue: Issue) -> list[Story]:
    """Each story with its clicks and unique clickers, most-read first; links that belong
    to no story (the archive, the unsubscribe page, ...) last, as "Other links"."""
    by_key: dict[str, int] = {}
    for index, item in enumerate(issue.items, 1):
        by_key.setdefault(url_key(item.url), index)
    links: dict[int, list[int]] = {}
    clicks: Counter[int] = Counter()
    clickers: Counter[int] = Counter()
    for link in campaign_links(session, campaign_id):
        index = by_key.get(url_key(link.url), 0)
        links.setdefault(index, []).append(link.id)
        clicks[index] += link.clicks
        clickers[index] += link.clickers
    stories = []
    for index, item in enumerate(issue.items, 1):
        ids = links.get(index, [])
        unique = unique_clickers(session, campaign_id, ids) if len(ids) > 1 else clickers[index]
        stories.append(Story(index, item.title, item.url, clicks[index], unique))
    stories.sort(key=lambda s: (-s.clicks, -s.clickers, s.index))
    if links.get(0):
        stories.append(Story(0, "Other links", "", clicks[0],
                             unique_clickers(session, campaign_id, links[0])))
    return stories


def first_hours(session: Session, campaign: Campaign) -> dict[str, list[int]]:
    """Opens, machine opens and clicks per hour over the first 72 hours after sending."""
    start = int(_sent_at(campaign).timestamp()) // 3600
    counts = hourly(session, campaign.id)
    return {kind: [counts.get(kind, {}).get(start + h, 0) for h in range(HOURS)]
            for kind in (OPEN, MACHINE_OPEN, CLICK)}


def previous_campaigns(session: Session, campaign: Campaign, count: int = PREVIOUS
                       ) -> list[Campaign]:
    """The ``count`` campaigns to the same list before this one, oldest first."""
    rows = session.scalars(
        select(Campaign).where(Campaign.list_slug == campaign.list_slug,
                               Campaign.transport == campaign.transport,
                               Campaign.created_at < campaign.created_at)
        .order_by(Campaign.created_at.desc()).limit(count)
    ).all()
    return list(reversed(rows))


# ---------------------------------------------------------------- a list over time


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def list_growth(session: Session, list_slug: str, weeks: int, now: dt.datetime) -> list[Week]:
    """Joined, left and bounced per week over the last ``weeks`` weeks (oldest first).

    Joined: became subscribed (new or confirmed). Left: unsubscribed from the list.
    Bounced: members whose address bounced or who reported spam (subscriber-wide).
    Joined and left come from the per-day counts (call
    :func:`newsletter.store.growth.fold_history` first); bounced from the rows that the
    history's partial index (migration 0012) finds in the time range, with no function of
    the time per row.
    """
    list_id = session.scalar(select(MailingList.id).where(MailingList.slug == list_slug))
    first = _monday(now.date()) - dt.timedelta(weeks=weeks - 1)
    mondays = [first + dt.timedelta(weeks=w) for w in range(weeks)]
    tally: dict[dt.date, Counter[str]] = {day: Counter() for day in mondays}
    if list_id is None:
        return [Week(day.isoformat(), 0, 0, 0) for day in tally]
    last = mondays[-1] + dt.timedelta(days=6)
    for (day, status), n in day_counts(session, list_id, first, last).items():
        tally[_monday(day)][status] += n
    members = select(Membership.subscriber_id).where(Membership.list_id == list_id)
    starts = [dt.datetime.combine(day, dt.time(), dt.UTC)
              for day in [*mondays, mondays[-1] + dt.timedelta(weeks=1)]]
    # The week of each row by comparing with the weeks' ends, over the few rows the index
    # finds: one query instead of one per week (a round trip each on PostgreSQL).
    week = case(*[(HistoryEntry.at < end, w) for w, end in enumerate(starts[1:])])
    wide = (select(HistoryEntry.new_status, week, func.count())
            .where(HistoryEntry.list_id.is_(None),
                   HistoryEntry.new_status.in_(["bounced", "complained"]),
                   HistoryEntry.at >= starts[0], HistoryEntry.at < starts[-1],
                   HistoryEntry.subscriber_id.in_(members), text(LEAVING))
            .group_by(HistoryEntry.new_status, week))
    for status, w, n in session.execute(wide):
        tally[mondays[int(w)]][str(status)] += int(n)
    return [Week(day.isoformat(), c[JOINED], c[LEFT], c["bounced"] + c["complained"])
            for day, c in tally.items()]
