"""Transactional email (confirm, welcome) that is never dropped silently.

:class:`MailQueue` is the service's :data:`~newsletter.web.context.Mailer`: it first
keeps the message in the database (:mod:`newsletter.store.mailqueue`), then tries
to send it at once. If the transport cannot take it (SendGrid unreachable, a server
error, a rate limit, a timeout, a refused key) the message stays queued and
:meth:`MailQueue.send_due`, run every little while by a background task of each
worker, tries again with backoff (:class:`newsletter.retry.RetryPolicy`) until it
goes out or, after about a day, is marked failed. Only a message SendGrid rejects
as wrong (a 4xx other than 401/403/429) is given up on at once.

Log lines name the message by its queue id, never by its address.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from ..delivery.problems import DeliveryProblem, RateLimited, Rejected
from ..delivery.single import single_body
from ..delivery.transports import open_transport
from ..errors import NewsletterError
from ..project import Project
from ..retry import RetryPolicy
from ..store import Database
from ..store.mailqueue import (
    FAILED,
    MAX_ATTEMPTS,
    Message,
    claim_due,
    enqueue,
    mark_failed_attempt,
    mark_sent,
)

log = logging.getLogger("newsletter.web.mail")

# send(to=, subject=, html=, text=): one attempt; raises DeliveryProblem (or NewsletterError).
Attempt = Callable[..., None]


def transport_attempt(project: Project) -> Attempt:
    """One attempt over the project's transport (SendGrid or the outbox), no retries."""

    def attempt(*, to: str, subject: str, html: str, text: str) -> None:
        chosen = open_transport(project, None, folder="transactional")
        try:
            chosen.send(single_body(project, to=to, subject=subject, html=html, text=text))
        finally:
            chosen.close()

    return attempt


def retry_after(problem: BaseException, attempt: int, policy: RetryPolicy) -> float | None:
    """Seconds before the next attempt after ``problem``, or None: give up now."""
    if isinstance(problem, Rejected):
        return None  # the message itself is wrong; sending it again changes nothing
    if isinstance(problem, RateLimited):
        return max(policy.rate_limit_wait(problem.reset_at, attempt), policy.backoff(attempt))
    return policy.backoff(attempt)


def _reason(problem: BaseException) -> str:
    if isinstance(problem, DeliveryProblem | NewsletterError):
        return problem.message  # written for people; holds no secrets
    return type(problem).__name__


class MailQueue:
    """The service's mailer: queue first, send at once, retry what did not go out."""

    def __init__(self, db: Database, attempt: Attempt, *, write_lock: Any = None,
                 policy: RetryPolicy | None = None) -> None:
        self.db = db
        self.attempt = attempt
        # SQLite: the service's writers queue on one lock (see WebContext.write_lock).
        self.write_lock = write_lock if write_lock is not None else contextlib.nullcontext()
        self.policy = policy or RetryPolicy(base=15.0, cap=3600.0)

    def __call__(self, *, to: str, subject: str, html: str, text: str,
                 kind: str = "transactional") -> None:
        """Keep the message, then try to send it; a failure leaves it queued (no exception)."""
        with self.write_lock, self.db.transaction() as session:
            message_id = enqueue(session, kind=kind, to=to, subject=subject, html=html,
                                 text=text)
        self._try(Message(message_id, kind, to, subject, html, text, 0))

    def send_due(self, limit: int = 20) -> int:
        """Try the queued messages whose time has come; how many went out."""
        with self.write_lock, self.db.transaction() as session:
            due = claim_due(session, limit=limit)
        return sum(self._try(message) for message in due)

    def _try(self, message: Message) -> bool:
        try:
            self.attempt(to=message.to, subject=message.subject, html=message.html,
                         text=message.text)
        except Exception as problem:  # any failure keeps the message; none may escape
            attempt = message.attempts + 1
            wait = retry_after(problem, attempt, self.policy)
            reason = _reason(problem)
            with self.write_lock, self.db.transaction() as session:
                status = mark_failed_attempt(session, message.id, reason, retry_in=wait)
            if status == FAILED:
                log.error("gave up on queued email %d after %d attempt(s): %s", message.id,
                          min(attempt, MAX_ATTEMPTS), reason)
            else:
                log.warning("could not send queued email %d (attempt %d): %s; trying again "
                            "in %d s", message.id, attempt, reason, round(wait or 0))
            return False
        with self.write_lock, self.db.transaction() as session:
            mark_sent(session, message.id)
        if message.attempts:
            log.info("sent queued email %d on attempt %d", message.id, message.attempts + 1)
        return True
