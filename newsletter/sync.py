"""`newsletter subscribers sync`: pull SendGrid's suppressions into the subscriber store.

For teams that do not host the event webhook. Each run asks SendGrid for what was
added since the last run (the time is kept in the database) and applies it with
the same rules as the webhook (:mod:`newsletter.store.suppressions`):

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

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from .delivery.transports import API_HOST_ENV, API_KEY_ENV, DEFAULT_API_HOST, api_key_from_env
from .errors import NewsletterError
from .project import Project
from .store import Database, Source, open_project_database, utcnow
from .store.events import apply_action
from .store.models import SyncState

STATE_KEY = "suppressions_synced_until"
PAGE_SIZE = 500  # SendGrid's maximum for these endpoints
ATTEMPTS = 5
MAX_WAIT = 60.0

# kind → (endpoint, what it does to the address)
SOURCES: dict[str, tuple[str, tuple[str, str | None]]] = {
    "bounces": ("/v3/suppression/bounces", ("bounced", None)),
    "spam reports": ("/v3/suppression/spam_reports", ("complained", None)),
    "unsubscribes": ("/v3/suppression/unsubscribes", ("unsubscribed", None)),
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
    """Reads SendGrid's suppression lists over HTTPS (the API key is never shown)."""

    def __init__(self, api_key: str, host: str | None = None, *, timeout: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.host = (host or os.environ.get(API_HOST_ENV) or DEFAULT_API_HOST).rstrip("/")
        self._http = httpx.Client(
            base_url=self.host, timeout=timeout,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
        )
        self.sleep = sleep

    def __repr__(self) -> str:
        return f"SuppressionClient(host={self.host!r})"

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET one JSON document, waiting out 429s and retrying server errors."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = self._http.get(path, params=params)
            except httpx.HTTPError as exc:
                problem = f"cannot reach {self.host} ({type(exc).__name__})"
            else:
                if response.status_code == 200:
                    try:
                        return response.json()
                    except ValueError:
                        problem = f"{path} answered with something that is not JSON"
                elif response.status_code in (401, 403):
                    raise NewsletterError(
                        f"SendGrid refused the API key ({response.status_code}) for {path}.",
                        hint=f"Check {API_KEY_ENV}; the key needs the 'Suppressions' read "
                        "permission (Settings → API Keys).",
                    )
                elif response.status_code == 429:
                    reset = response.headers.get("X-RateLimit-Reset", "")
                    wait = float(reset) - time.time() if reset.isdigit() else 1.0
                    self.sleep(min(max(wait, 0.5), MAX_WAIT))
                    continue
                elif response.status_code < 500:
                    raise NewsletterError(
                        f"SendGrid answered {response.status_code} for {path}.",
                        hint="Run `newsletter subscribers sync` again; if it persists, check "
                        f"{API_HOST_ENV} and the unsubscribe group id in newsletter.toml.",
                    )
                else:
                    problem = f"SendGrid answered {response.status_code} for {path}"
            if attempt < ATTEMPTS:
                self.sleep(min(2.0 ** attempt, MAX_WAIT))
        raise NewsletterError(
            f"Could not read SendGrid's suppressions: {problem}.",
            hint="Try `newsletter subscribers sync` again in a few minutes.",
        )

    def pages(self, path: str, since: int | None, until: int) -> Iterator[list[dict[str, Any]]]:
        """Every page of one suppression list created in [since, until]."""
        offset = 0
        while True:
            params: dict[str, Any] = {"limit": PAGE_SIZE, "offset": offset, "end_time": until}
            if since is not None:
                params["start_time"] = since
            page = self.get(path, params)
            if not isinstance(page, list):
                raise NewsletterError(f"SendGrid's answer for {path} is not a list.",
                                      hint="Try again later.")
            rows = [row for row in page if isinstance(row, dict)]
            if rows:
                yield rows
            if len(page) < PAGE_SIZE:
                return
            offset += PAGE_SIZE

    def group_suppressions(self, group_id: int) -> list[str]:
        """Every address in one unsubscribe group."""
        data = self.get(f"/v3/asm/groups/{group_id}/suppressions")
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
        for kind, (path, action) in SOURCES.items():
            report.fetched[kind] = report.changed[kind] = 0
            for rows in client.pages(path, since, until):
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
