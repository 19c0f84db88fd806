"""Without the webhook: SendGrid's own daily totals for a campaign's category.

SendGrid counts every open and click (``opens``, ``clicks``) and also unique ones
(``unique_opens``, ``unique_clicks``), but per day and per category, not per reader:
a reader who opens on Monday and again on Tuesday is counted on both days. The report
says so whenever it shows these figures.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..delivery.problems import DeliveryProblem
from ..delivery.requests import category
from ..delivery.sendgrid_client import SendGridClient
from .figures import Figures

DAYS = 7  # SendGrid totals from the send day to a week later


def campaign_category(issue_name: str) -> str:
    """The category every message of an issue carries (see delivery/requests.py)."""
    return category(f"issue:{issue_name}")


def add_sendgrid_totals(figures: Figures, client: SendGridClient, sent: dt.date,
                        today: dt.date) -> str | None:
    """Fill ``figures`` from GET /v3/categories/stats; None, or why it could not."""
    end = min(today, sent + dt.timedelta(days=DAYS))
    try:
        days = client.category_stats([campaign_category(figures.issue)], sent.isoformat(),
                                     end.isoformat())
    except DeliveryProblem as problem:
        return f"SendGrid's statistics could not be read: {problem}"
    totals: dict[str, int] = {}
    for day in days if isinstance(days, list) else []:
        for stat in day.get("stats", []) if isinstance(day, dict) else []:
            metrics: Any = stat.get("metrics") if isinstance(stat, dict) else None
            for name, value in (metrics or {}).items():
                if isinstance(value, int):
                    totals[name] = totals.get(name, 0) + value
    if not totals:
        return "SendGrid has no statistics for this issue's category yet."
    figures.source = "sendgrid"
    figures.delivered = totals.get("delivered", 0)
    figures.bounced_hard = totals.get("bounces", 0)
    figures.bounced_soft = totals.get("deferred", 0)
    figures.blocked = totals.get("blocks", 0)
    figures.opens, figures.opens_total = totals.get("unique_opens", 0), totals.get("opens", 0)
    figures.clicks, figures.clicks_total = totals.get("unique_clicks", 0), totals.get("clicks", 0)
    figures.unsubscribes = max(figures.unsubscribes, totals.get("unsubscribes", 0))
    figures.spam_reports = totals.get("spam_reports", 0)
    return None
