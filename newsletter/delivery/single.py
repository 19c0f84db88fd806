"""One transactional message (confirm your subscription, welcome), sent at once."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..errors import NewsletterError
from ..project import Project
from ..retry import RetryPolicy
from .problems import AuthProblem, DeliveryProblem, RateLimited, Rejected, Retryable
from .requests import sender_fields
from .transports import open_transport

ATTEMPTS = 3
# A person is waiting for this message (a web form): retry briefly.
MAX_WAIT = 5.0


def single_body(project: Project, *, to: str, subject: str, html: str, text: str) -> dict[str, Any]:
    """The Mail Send body of one message to one address."""
    return {
        "personalizations": [{"to": [{"email": to}]}],
        **sender_fields(project.config),
        "subject": subject,
        "content": [{"type": "text/plain", "value": text}, {"type": "text/html", "value": html}],
        "categories": ["transactional"],
    }


def send_one(
    project: Project,
    *,
    to: str,
    subject: str,
    html: str,
    text: str,
    transport: str | None = None,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Send one message to ``to`` over the configured (or named) transport.

    The outbox writes it to outbox/transactional/. Server errors and rate limits
    are retried briefly (``policy``, waiting with ``sleep``); anything else raises
    NewsletterError (no secrets in it).
    """
    policy = policy or RetryPolicy(base=0.5, cap=MAX_WAIT)
    chosen = open_transport(project, transport, folder="transactional")
    body = single_body(project, to=to, subject=subject, html=html, text=text)
    try:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                chosen.send(body)
                return
            except RateLimited as problem:
                wait = policy.rate_limit_wait(problem.reset_at, attempt)
                if attempt == ATTEMPTS or wait > MAX_WAIT:
                    raise _error(problem) from None
                sleep(wait)
            except Retryable as problem:
                if attempt == ATTEMPTS:
                    raise _error(problem) from None
                sleep(policy.backoff(attempt))
            except DeliveryProblem as problem:
                raise _error(problem) from None
    finally:
        chosen.close()


def _error(problem: DeliveryProblem) -> NewsletterError:
    if isinstance(problem, AuthProblem | Rejected):
        return NewsletterError(problem.message, hint="Fix the SendGrid setup, then try again.")
    return NewsletterError(
        f"Could not send the message: {problem.message}", hint="Try again in a few minutes."
    )
