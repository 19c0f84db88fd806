"""What can go wrong with one request to SendGrid, and what to do next."""

from __future__ import annotations

import time
from typing import Any

from ..retry import reset_time
from . import _json

API_KEY_ENV = "SENDGRID_API_KEY"


class DeliveryProblem(Exception):
    """One request did not end in acceptance. Subclasses say what to do next."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Retryable(DeliveryProblem):
    """5xx or a connection error: the API did not take the request; try again later."""


class RateLimited(DeliveryProblem):
    """429: wait until ``reset_at`` (epoch seconds, None if the API did not say).

    ``reset_at`` comes from :func:`newsletter.retry.reset_time` (``Retry-After`` or
    ``X-RateLimit-Reset``); :meth:`RetryPolicy.rate_limit_wait` turns it into a wait.
    """

    def __init__(self, message: str, reset_at: float | None) -> None:
        super().__init__(message, 429)
        self.reset_at = reset_at

    def wait(self, now: float | None = None) -> float | None:
        """Seconds until the reset (never negative), or None if the API did not say."""
        if self.reset_at is None:
            return None
        return max(self.reset_at - (time.time() if now is None else now), 0.0)


class Rejected(DeliveryProblem):
    """400 (or another 4xx): this request is wrong; ``errors`` are SendGrid's explanations."""

    def __init__(self, message: str, status: int, errors: list[dict[str, Any]]) -> None:
        super().__init__(message, status)
        self.errors = errors


class AuthProblem(DeliveryProblem):
    """401/403: nothing will get through until the key, its permissions or the sender is fixed."""


class Ambiguous(DeliveryProblem):
    """The request may have reached SendGrid (it timed out waiting for the answer)."""


def errors_of(body: bytes | None) -> list[dict[str, Any]]:
    """The ``errors`` list of a SendGrid error body ([] if there is none)."""
    try:
        data = _json.loads(body or b"")
    except ValueError:
        return []
    errors = data.get("errors") if isinstance(data, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def describe_errors(errors: list[dict[str, Any]]) -> str:
    """SendGrid's error list as readable lines: 'field: message (help)'."""
    lines = []
    for error in errors:
        where = f"{error['field']}: " if error.get("field") else ""
        help_text = f" (see {error['help']})" if error.get("help") else ""
        lines.append(f"{where}{error.get('message', 'no message')}{help_text}")
    return "; ".join(lines) or "no details given"


def _auth_message(status: int, errors: list[dict[str, Any]]) -> str:
    said = describe_errors(errors)
    if status == 401:
        return (
            f"SendGrid refused the API key (401: {said}). Check that {API_KEY_ENV} holds a "
            "current, complete key."
        )
    return (
        f"SendGrid refused the request (403: {said}). The key needs the 'Mail Send' "
        "permission (and 'Scheduled sends' for --at and cancel), and the From address must "
        "be a verified sender or on an authenticated domain."
    )


def classify(status: int, body: bytes | None, headers: Any) -> DeliveryProblem:
    """The problem an HTTP error answer (``status`` >= 400) stands for."""
    errors = errors_of(body)
    if status in (401, 403):
        return AuthProblem(_auth_message(status, errors), status)
    if status == 429:
        return RateLimited("SendGrid's rate limit was reached (429)", reset_time(headers))
    if status >= 500:
        return Retryable(f"SendGrid had a server error ({status})", status)
    return Rejected(f"SendGrid rejected the request ({status}): {describe_errors(errors)}",
                    status, errors)
