"""The list of issues: every issue file, newest first, with its state."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from ..delivery.models import CampaignStatus
from ..delivery.status import campaigns_status
from ..issue import check_file
from ..project import Project


@dataclass(frozen=True)
class IssueRow:
    """One line of the issues page."""

    name: str
    date: str
    number: int | None
    subject: str
    state: str  # draft, ready, scheduled, sending, sent
    errors: int
    scheduled_list: str = ""  # the list of a scheduled send, which can be cancelled
    report_lists: tuple[str, ...] = ()  # lists it went to (or is going to): a report each


def _send_state(project: Project, path: Path | None = None
                ) -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    """Issue name -> scheduled, sending or sent; -> the list of a scheduled send; -> the
    lists it went to (of the issue file ``path``, if given)."""
    states: dict[str, str] = {}
    scheduled: dict[str, str] = {}
    went: dict[str, set[str]] = {}
    rank = {"scheduled": 1, "sending": 2, "sent": 3}
    now = dt.datetime.now(dt.UTC)
    for item in campaigns_status(project, path):
        campaign = item.campaign
        if campaign.status == CampaignStatus.CANCELLED:
            continue
        if campaign.send_at is not None and campaign.send_at > now:
            state = "scheduled"  # SendGrid has the batches and sends them at send_at
            scheduled[campaign.issue_name] = campaign.list_slug
        elif campaign.status == CampaignStatus.SENT:
            state = "sent"
        else:
            state = "sending"
        if state != "scheduled":
            went.setdefault(campaign.issue_name, set()).add(campaign.list_slug)
        if rank[state] > rank.get(states.get(campaign.issue_name, ""), 0):
            states[campaign.issue_name] = state
    return states, scheduled, went


def issue_rows(project: Project) -> list[IssueRow]:
    """Every issue, newest first. Drafts are marked draft, or have errors left."""
    files = project.issue_files()
    sent, scheduled, went = _send_state(project)
    rows = []
    for path in files:
        result = check_file(path, files)
        issue = result.issue
        state = sent.get(path.stem) or (
            "draft" if issue is None or result.errors or issue.draft else "ready")
        rows.append(IssueRow(
            name=path.stem,
            date=issue.date.isoformat() if issue else path.stem,
            number=issue.number if issue else None,
            subject=issue.subject if issue else "(this file has errors: open it to see them)",
            state=state,
            errors=len(result.errors),
            scheduled_list=scheduled.get(path.stem, "") if sent.get(path.stem) == "scheduled"
            else "",
            report_lists=tuple(sorted(went.get(path.stem, ()))),
        ))
    return sorted(rows, key=lambda row: (row.date, row.name), reverse=True)


def report_lists(project: Project, path: Path) -> tuple[str, ...]:
    """The lists the issue file ``path`` went to (or is going to): each has a report."""
    return tuple(sorted(_send_state(project, path)[2].get(path.stem, ())))
