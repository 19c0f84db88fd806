"""Which issues the archive publishes: only what has been published already.

An issue is published once it has been sent to a list (a finished send in the
database), or, for teams that send it elsewhere, once its date has passed.
Drafts never are. Next week's issue, written early, stays out: an archive page,
its feed entry and its sitemap line would leak it before it goes out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

DRAFT = "draft: true"


def left_out_reason(name: str, date: dt.date, draft: bool, sent: Collection[str],
                    today: dt.date) -> str | None:
    """Why the issue ``name`` is not published yet, or None when it is published.

    ``sent``: names of issues sent to a list. ``today``: in the newsletter's time zone.
    """
    if draft:
        return DRAFT
    if name in sent or date < today:
        return None
    when = "today" if date == today else f"on {date.isoformat()}"
    return (f"not sent to a list yet, and dated {when}: it is published once sent, or "
            "from the day after its date")
