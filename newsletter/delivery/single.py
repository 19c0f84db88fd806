"""One transactional message (confirm your subscription, welcome), sent at once.

A message that offers an unsubscribe link (the welcome email) also gets the
List-Unsubscribe and one-click List-Unsubscribe-Post headers for that link, so mail
programs show their own unsubscribe button; one without (the confirmation: nobody is
subscribed yet) gets none.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from ..errors import NewsletterError
from ..project import Project
from ..retry import RetryPolicy
from .problems import AuthProblem, DeliveryProblem, RateLimited, Rejected, Retryable
from .requests import ONE_CLICK, sender_fields
from .transports import open_transport

ATTEMPTS = 3
# A person is waiting for this message (a web form): retry briefly.
MAX_WAIT = 5.0


def unsubscribe_headers(project: Project, text: str) -> dict[str, str]:
    """List-Unsubscribe headers for the service's unsubscribe link in ``text``, if any."""
    base = re.escape(f"{project.config.service_url}/unsubscribe/")
    found = re.search(base + r"[A-Za-z0-9._~-]+", text)
    if found is None:
        return {}
    mailto = project.config.sender.unsubscribe_email
    extra = f", <mailto:{mailto}?subject=unsubscribe>" if mailto else ""
    return {"List-Unsubscribe": f"<{found.group(0)}>{extra}", "List-Unsubscribe-Post": ONE_CLICK}


def single_body(
    project: Project, *, to: str, subject: str, html: str, text: str,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The Mail Send body of one message to one address.

    ``headers`` default to :func:`unsubscribe_headers` of the text.
    """
    if headers is None:
        headers = unsubscribe_headers(project, text)
    person: dict[str, Any] = {"to": [{"email": to}]}
    if headers:
        person["headers"] = headers
    return {
        "personalizations": [person],
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
    headers: dict[str, str] | None = None,
    transport: str | None = None,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Send one message to ``to`` over the configured (or named) transport.

    ``headers`` default to List-Unsubscribe for an unsubscribe link in ``text``.
    The outbox writes it to outbox/transactional/. Server errors and rate limits
    are retried briefly (``policy``, waiting with ``sleep``); anything else raises
    NewsletterError (no secrets in it).
    """
    policy = policy or RetryPolicy(base=0.5, cap=MAX_WAIT)
    chosen = open_transport(project, transport, folder="transactional")
    body = single_body(project, to=to, subject=subject, html=html, text=text, headers=headers)
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
