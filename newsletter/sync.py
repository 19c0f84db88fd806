"""`newsletter subscribers sync`: pull SendGrid's suppressions into the subscriber store.

For teams that do not host the event webhook. Each run asks SendGrid for what was
added since the last run (the time is kept in the database) and applies it with
the same rules as the webhook (:mod:`newsletter.store.events`):

=====================================  ===========================================
GET /v3/suppression/bounces            subscriber bounced
GET /v3/suppression/spam_reports       subscriber complained (no list mails them again)
GET /v3/suppression/unsubscribes       unsubscribed from every list (SendGrid
                                       suppresses them for every message)
GET /v3/asm/groups/{id}/suppressions   unsubscribed from every list ([delivery]
                                       sendgrid_unsubscribe_group; this endpoint has
                                       no dates, so it is read whole each time)
=====================================  ===========================================

Pages of 500 are followed with ``offset`` until a short page. Applying is idempotent,
so a run that fails half-way is simply run again.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .delivery.problems import (
    Ambiguous,
    AuthProblem,
    DeliveryProblem,
    RateLimited,
    Retryable,
)
from .delivery.sendgrid_client import (
    API_HOST_ENV,
    API_KEY_ENV,
    SendGridClient,
    api_key_from_env,
)
from .errors import NewsletterError
from .project import Project
from .retry import RetryPolicy
from .store import Database, Source, open_project_database, utcnow
from .store.events import apply_action
from .store.models import SyncState

STATE_KEY = "suppressions_synced_until"
PAGE_SIZE = 500  # SendGrid's maximum for these endpoints
ATTEMPTS = 5
MAX_WAIT = 60.0  # a rate limit that resets later than this is waited out in steps

# kind → (suppression list, what it does to the address)
SOURCES: dict[str, tuple[str, tuple[str, str | None]]] = {
    "bounces": ("bounces", ("bounced", None)),
    "spam reports": ("spam_reports", ("complained", None)),
    "unsubscribes": ("unsubscribes", ("unsubscribed", None)),
}
GROUP_KIND = "group unsubscribes"


@dataclass
class SyncReport:
    """What one sync fetched and changed, by kind, and the time window it covered."""

    since: int | None
    until: int
    fetched: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)


class SuppressionClient:
    """Reads SendGrid's suppression lists through :class:`SendGridClient`, retrying
    server errors, broken connections and rate limits (the API key is never shown)."""

    def __init__(self, api_key: str, host: str | None = None, *, timeout: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep,
                 policy: RetryPolicy | None = None) -> None:
        self.api = SendGridClient(api_key, host=host, timeout=timeout)
        self.host = self.api.host
        self.sleep = sleep
        self.policy = policy or RetryPolicy(base=2.0, cap=MAX_WAIT)

    def __repr__(self) -> str:
        return f"SuppressionClient(host={self.host!r})"

    def close(self) -> None:
        self.api.close()

    def _get(self, what: str, request: Callable[[], Any]) -> Any:
        """One GET, waiting out 429s and retrying server errors and broken connections.

        A GET changes nothing, so even an answer lost on the way back is simply asked
        for again.
        """
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return request()
            except AuthProblem as problem:
                raise NewsletterError(
                    f"SendGrid refused the API key ({problem.status}) for {what}.",
                    hint=f"Check {API_KEY_ENV}; the key needs the 'Suppressions' read "
                    "permission (Settings → API Keys).",
                ) from None
            except RateLimited as problem:
                last: DeliveryProblem = problem
                wait = self.policy.rate_limit_wait(problem.reset_at, attempt)
            except (Retryable, Ambiguous) as problem:
                last = problem
                wait = self.policy.backoff(attempt)
            except DeliveryProblem as problem:
                raise NewsletterError(
                    f"SendGrid answered {problem.status} for {what}.",
                    hint="Run `newsletter subscribers sync` again; if it persists, check "
                    f"{API_HOST_ENV} and the unsubscribe group id in newsletter.toml.",
                ) from None
            if attempt < ATTEMPTS:
                self.sleep(min(wait, MAX_WAIT))
        raise NewsletterError(
            f"Could not read SendGrid's suppressions: {last.message}.",
            hint="Try `newsletter subscribers sync` again in a few minutes.",
        )

    def pages(self, kind: str, since: int | None, until: int) -> Iterator[list[dict[str, Any]]]:
        """Every page of one suppression list (``bounces``, ``spam_reports``,
        ``unsubscribes``) created in [since, until]."""
        offset = 0
        what = f"/v3/suppression/{kind}"
        while True:
            query: dict[str, Any] = {"limit": PAGE_SIZE, "offset": offset, "end_time": until}
            if since is not None:
                query["start_time"] = since
            page = self._get(what, functools.partial(self.api.suppressions, kind, query))
            if not isinstance(page, list):
                raise NewsletterError(f"SendGrid's answer for {what} is not a list.",
                                      hint="Try again later.")
            rows = [row for row in page if isinstance(row, dict)]
            if rows:
                yield rows
            if len(page) < PAGE_SIZE:
                return
            offset += PAGE_SIZE

    def group_suppressions(self, group_id: int) -> list[str]:
        """Every address in one unsubscribe group."""
        data = self._get(f"/v3/asm/groups/{group_id}/suppressions",
                         lambda: self.api.group_suppressions(group_id))
        return [str(e) for e in data if isinstance(e, str)] if isinstance(data, list) else []


def last_synced(db: Database) -> int | None:
    """The end (epoch seconds) of the window the last sync covered, or None."""
    with db.transaction() as session:
        state = session.get(SyncState, STATE_KEY)
        return int(state.value) if state is not None else None


def _remember(db: Database, until: int) -> None:
    with db.transaction() as session:
        state = session.get(SyncState, STATE_KEY)
        if state is None:
            session.add(SyncState(name=STATE_KEY, value=str(until), updated_at=utcnow()))
        else:
            state.value, state.updated_at = str(until), utcnow()


def _apply(db: Database, rows: list[dict[str, Any]], kind: str,
           action: tuple[str, str | None]) -> int:
    changed = 0
    with db.transaction() as session:
        for row in rows:
            email = row.get("email")
            if not isinstance(email, str):
                continue
            detail = f"SendGrid {kind}" + (f": {row['reason']}" if row.get("reason") else "")
            if apply_action(session, email, action, source=Source.SYNC, detail=detail[:500]):
                changed += 1
    return changed


def sync_suppressions(
    project: Project,
    *,
    database: Database | None = None,
    client: SuppressionClient | None = None,
    now: float | None = None,
    on_page: Callable[[str, int], None] | None = None,
) -> SyncReport:
    """Pull suppressions added since the last sync and apply them; remember this sync.

    ``on_page(kind, rows)`` is called after each page is applied (for progress).
    Needs SENDGRID_API_KEY unless a ``client`` is given.
    """
    db = database or open_project_database(project)
    own_client = client is None
    if client is None:
        key = api_key_from_env("`newsletter subscribers sync`", "Suppressions: read access",
                               " and run it again")
        client = SuppressionClient(key, timeout=project.config.delivery.timeout)
    # SendGrid's windows are inclusive: the last second is read twice, which is harmless.
    since = last_synced(db)
    until = int(now if now is not None else time.time())
    report = SyncReport(since=since, until=until)
    try:
        for kind, (name, action) in SOURCES.items():
            report.fetched[kind] = report.changed[kind] = 0
            for rows in client.pages(name, since, until):
                report.fetched[kind] += len(rows)
                report.changed[kind] += _apply(db, rows, kind, action)
                if on_page:
                    on_page(kind, len(rows))
        group = project.config.delivery.sendgrid_unsubscribe_group
        if group:
            addresses = client.group_suppressions(group)
            rows = [{"email": address} for address in addresses]
            report.fetched[GROUP_KIND] = len(rows)
            report.changed[GROUP_KIND] = _apply(db, rows, GROUP_KIND, ("unsubscribed", None))
            if on_page:
                on_page(GROUP_KIND, len(rows))
        _remember(db, until)
    finally:
        if own_client:
            client.close()
        if database is None:
            db.dispose()
    return report
