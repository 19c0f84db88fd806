"""What every route of the web service shares: project, database, secrets, limits, pages."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse

from ..project import Project
from ..store import Database, ratelimits
from ..templating import environments, render_template
from .security import PAGE_CSP, rate_key
from .webhook import WebhookVerifier

log = logging.getLogger("newsletter.web")
T = TypeVar("T")
# Every this many rate-limit hits, counters whose window has ended are deleted.
FORGET_EVERY = 1000

HOUSEKEEPING_ENV = "NEWSLETTER_HOUSEKEEPING_SECONDS"
MAIL_POLL_ENV = "NEWSLETTER_MAIL_POLL_SECONDS"

# send(to=, subject=, html=, text=): one transactional message.
Mailer = Callable[..., None]


@dataclass(frozen=True)
class Limits:
    """Tunable limits of the web service (the defaults suit a small newsletter)."""

    form_body: int = 16 * 1024
    webhook_body: int = 8 * 1024 * 1024
    signups_per_ip: int = 10  # ... in ip_window seconds
    ip_window: float = 600
    signups_per_address: int = 3  # ... in address_window seconds
    address_window: float = 3600
    confirm_days: int = 7
    webhook_tolerance: int = 300
    housekeeping: float = 3600  # seconds between runs of the shared housekeeping
    mail_poll: float = 30  # seconds between looks at the queue of transactional email

    @classmethod
    def from_env(cls) -> Limits:
        """The defaults, with the periods from the environment (tests shorten them)."""
        return cls(housekeeping=float(os.environ.get(HOUSEKEEPING_ENV) or 3600),
                   mail_poll=float(os.environ.get(MAIL_POLL_ENV) or 30))


class ServiceUnavailable(HTTPException):
    """The database cannot be reached: 503, so clients (and SendGrid) try again."""

    def __init__(self) -> None:
        super().__init__(503, "The service is briefly unavailable; please try again shortly.",
                         headers={"Retry-After": "30"})


@dataclass
class WebContext:
    """Shared state of one app: ``request.app.state.web``."""

    project: Project
    db: Database
    secret: bytes
    verifier: WebhookVerifier | None
    send: Mailer
    welcome: bool = True
    limits: Limits = field(default_factory=Limits)
    clock: Callable[[], float] = time.time  # of the rate limits
    mail_status: str = "ok"  # for /healthz: "ok", or why mail cannot be sent
    write_lock: Any = field(init=False)
    _hits: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        # SQLite has one writer at a time; queueing our own writers here avoids
        # "database is locked" when a read transaction would upgrade to a write.
        sqlite = self.db.engine.dialect.name == "sqlite"
        self.write_lock = threading.Lock() if sqlite else contextlib.nullcontext()

    async def run(self, function: Callable[..., T], *args: Any, write: bool = False) -> T:
        """Run blocking database work in a worker thread; a database failure becomes 503."""

        def call() -> T:
            try:
                if write:
                    with self.write_lock:
                        return function(*args)
                return function(*args)
            except (DBAPIError, PoolTimeout) as exc:
                cause = getattr(exc, "orig", None) or exc
                log.error("database unavailable: %s", type(cause).__name__)
                raise ServiceUnavailable() from None

        return await run_in_threadpool(call)

    # ------------------------------------------------------------ rate limits

    def _hit(self, key: str, limit: int, window: float) -> bool:
        now = int(self.clock())
        with self.db.transaction() as session:
            count = ratelimits.hit(session, key, window=int(window), now=now)
            self._hits += 1
            if self._hits % FORGET_EVERY == 0:  # the table must not grow without end
                ratelimits.forget_old(session, older_than=now - self.longest_window())
        return count <= limit

    def longest_window(self) -> int:
        """The longest rate-limit window, in seconds: older counters are of no use."""
        return int(max(self.limits.ip_window, self.limits.address_window))

    async def allow(self, kind: str, value: str, limit: int, window: float) -> bool:
        """Count one hit of ``value`` (e.g. an IP address) for rate limit ``kind``.

        False if that is over ``limit`` hits in its ``window`` (in seconds). The counts
        are in the database, so every worker of the service shares them.
        """
        return await self.run(self._hit, rate_key(kind, value), limit, window, write=True)

    # ------------------------------------------------------------ pages and emails

    def base_context(self) -> dict[str, Any]:
        config = self.project.config
        return {"newsletter": config, "brand": config.brand}

    def page(
        self, template: str, status_code: int = 200, headers: dict[str, str] | None = None,
        /, **values: Any,
    ) -> HTMLResponse:
        """Render ``web/<template>.html.j2`` (the project's templates/ override by name)."""
        html_env, _ = environments(self.project)
        html = render_template(html_env, f"web/{template}.html.j2",
                               {**self.base_context(), **values})
        response = HTMLResponse(html, status_code=status_code, headers=headers)
        response.headers["content-security-policy"] = PAGE_CSP
        response.headers["cache-control"] = "no-store"
        return response

    def email(self, template: str, /, **values: Any) -> tuple[str, str, str]:
        """(subject, html, text) of ``web/<template>.{txt,html}.j2``.

        The text template's first line is ``Subject: ...``, then a blank line.
        """
        html_env, text_env = environments(self.project)
        context = {**self.base_context(), **values}
        text = render_template(text_env, f"web/{template}.txt.j2", context)
        first, _, rest = text.partition("\n")
        subject = first.removeprefix("Subject:").strip() if first.startswith("Subject:") else ""
        if subject:
            text = rest.lstrip("\n")
        html = render_template(html_env, f"web/{template}.html.j2", context)
        return subject or self.project.config.name, html, text

    def error_page(self, status_code: int, title: str, message: str,
                   headers: dict[str, str] | None = None) -> HTMLResponse:
        """A plain error page in the newsletter's look."""
        return self.page("error", status_code, headers, title=title, message=message)
