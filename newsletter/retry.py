"""One retry policy for every request to SendGrid: jittered exponential backoff, and
the wait a rate-limited answer asks for (``Retry-After``, ``X-RateLimit-Reset``),
read in one place.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def _header(headers: Mapping[str, Any] | Any, name: str) -> str | None:
    """One header's value from a dict-like (any case), or None."""
    if headers is None:
        return None
    try:
        value = headers.get(name)
        if value is None:
            value = headers.get(name.lower())
    except (AttributeError, TypeError):
        return None
    return str(value).strip() if value is not None else None


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def reset_time(headers: Mapping[str, Any] | Any, now: float | None = None) -> float | None:
    """When (epoch seconds) a rate-limited request may be sent again, or None if not said.

    ``Retry-After`` (delay in seconds, or an HTTP date) wins over ``X-RateLimit-Reset``
    (epoch seconds, SendGrid's header). Values that cannot be read are ignored.
    """
    now = time.time() if now is None else now
    retry_after = _header(headers, "Retry-After")
    if retry_after:
        seconds = _number(retry_after)
        if seconds is not None:
            return now + seconds
        try:
            date = email.utils.parsedate_to_datetime(retry_after)
        except (TypeError, ValueError, IndexError):
            date = None
        if date is not None and date.tzinfo is not None:
            return date.timestamp()
    reset = _header(headers, "X-RateLimit-Reset")
    if reset:
        return _number(reset)
    return None


@dataclass
class RetryPolicy:
    """How long to wait before trying a request again.

    ``rng`` is injectable so tests can seed it; each caller (thread) may share one
    policy: ``random.Random`` methods are safe to call from several threads.
    """

    base: float = 1.0  # the first retry waits about this many seconds, then doubling
    cap: float = 60.0  # no single backoff is longer
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, attempt: int) -> float:
        """Seconds before retry number ``attempt`` (1, 2, ...): exponential, jittered.

        The ceiling is ``min(cap, base * 2 ** (attempt - 1))``; the wait is a uniformly
        random 50 to 100 % of it.
        """
        ceiling = min(self.cap, self.base * 2 ** (max(attempt, 1) - 1))
        return ceiling * self.rng.uniform(0.5, 1.0)

    def rate_limit_wait(self, reset_at: float | None, attempt: int,
                        now: float | None = None) -> float:
        """Seconds to wait after a 429 (``reset_at`` from :func:`reset_time`).

        Until the reset the API named (never negative), or :meth:`backoff` when it
        named none.
        """
        if reset_at is None:
            return self.backoff(attempt)
        now = time.time() if now is None else now
        return max(reset_at - now, 0.0)
