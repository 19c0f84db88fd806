"""When to send: reading `--at` and checking a scheduled time against SendGrid's limits."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import NewsletterError
from .requests import MAX_SCHEDULE_AHEAD

_AT = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})[ T](\d{1,2}:\d{2})(?::(\d{2}))?\s*(\S+)?\s*$")


def parse_at(text: str, default_zone: str = "UTC") -> dt.datetime:
    """'2026-12-01 09:00 Europe/Berlin' (or an ISO time with offset) as an aware datetime."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
        if value.tzinfo is not None:
            return value
    except ValueError:
        pass
    match = _AT.match(text)
    if not match:
        raise NewsletterError(
            f"--at {text!r}: expected a date, a time and a time zone, like "
            "'2026-12-01 09:00 Europe/Berlin'.",
            hint='Write it as --at "YYYY-MM-DD HH:MM Zone/City".',
        )
    day, clock, seconds, zone = match.groups()
    zone = zone or default_zone
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise NewsletterError(
            f"--at {text!r}: unknown time zone {zone!r}; expected a name like Europe/Berlin "
            "or UTC.",
            hint='e.g. --at "2026-12-01 09:00 Europe/Berlin".',
        ) from None
    try:
        return dt.datetime.fromisoformat(f"{day}T{clock}:{seconds or '00'}").replace(tzinfo=tz)
    except ValueError:
        raise NewsletterError(
            f"--at {text!r}: not a real date and time.", hint="Check the day and the hour."
        ) from None


def check_schedule(when: dt.datetime, now: dt.datetime | None = None) -> dt.datetime:
    """``when`` in UTC if it is in the future and at most 72 hours ahead (SendGrid's limit)."""
    now = now or dt.datetime.now(dt.UTC)
    when = when.astimezone(dt.UTC)
    if when <= now + dt.timedelta(minutes=1):
        raise NewsletterError(
            f"--at {when:%Y-%m-%d %H:%M} UTC is not in the future.",
            hint="Pick a later time, or leave out --at to send now.",
        )
    if when - now > MAX_SCHEDULE_AHEAD:
        raise NewsletterError(
            f"--at {when:%Y-%m-%d %H:%M} UTC is more than 72 hours ahead; SendGrid schedules "
            "at most 72 hours in advance.",
            hint="Run the send command again closer to the time.",
        )
    return when

