"""The web service as one Starlette app: sign-up, unsubscribe, SendGrid webhook, archive, health.

``create_app(project)`` builds it; ``newsletter serve`` runs it under uvicorn, in one
process or as ``--workers N`` processes of the factory :func:`app_from_env`.
Routes:

=======================  =====================================================
GET/POST /subscribe/SLUG  sign-up form; POST takes the form or JSON (OPTIONS: CORS)
GET /subscribe/SLUG/embed the snippet for another website (:mod:`.embed`)
GET/POST /confirm/TOKEN   double opt-in confirmation (page with a button / do it)
GET/POST /unsubscribe/T   unsubscribe page / unsubscribe (also RFC 8058 one-click)
POST /webhooks/sendgrid   SendGrid's signed Event Webhook
GET /healthz              200 if the database answers, else 503 (JSON: webhook, mail)
GET /...                  the built archive site (the project's site/ folder)
=======================  =====================================================
"""

from __future__ import annotations

import contextlib
import logging
import logging.config
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from ..delivery.transports import api_key_from_env, transport_name
from ..project import Project, find_project
from ..store import Database, open_project_database, use_secret
from ..store.events import apply_batch
from ..store.mailqueue import counts as queue_counts
from ..studio import hosted_app
from ..studio.security import MAX_BODY_BYTES as STUDIO_BODY
from ..tokens import project_secret
from . import background
from .context import Limits, Mailer, ServiceUnavailable, WebContext, log
from .logs import log_config
from .mailing import MailQueue, transport_attempt
from .proxy import TRUSTED_PROXIES_ENV, ProxyHeadersMiddleware, trusted_from_env
from .security import HTTPMiddleware, SecurityHeadersMiddleware, redact_tokens
from .signup import (
    confirmation,
    embed_page,
    subscribe_form,
    subscribe_post,
    subscribe_preflight,
)
from .unsubscribe import unsubscribe_page, unsubscribe_post
from .webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureRejected,
    WebhookVerifier,
    parse_events,
    verifier_from_env,
)

SITE_FOLDER = "site"
# `newsletter serve --workers N` tells its worker processes (app_from_env) these.
PROJECT_ENV = "NEWSLETTER_PROJECT_DIR"
WELCOME_ENV = "NEWSLETTER_WELCOME"


def _check_transport(project: Project) -> None:
    if transport_name(project, None) == "sendgrid":
        api_key_from_env()  # no key: refuse to start, rather than queue every confirmation


async def sendgrid_webhook(request: Request) -> Response:
    """POST /webhooks/sendgrid: verify, then apply the batch in one transaction."""
    ctx: WebContext = request.app.state.web
    if ctx.verifier is None:
        log.error("webhook call refused: SENDGRID_WEBHOOK_PUBLIC_KEY is not set")
        return JSONResponse({"error": "The webhook is not configured."}, 503,
                            headers={"Retry-After": "300"})
    body = await request.body()
    try:
        ctx.verifier.verify(body, request.headers.get(SIGNATURE_HEADER),
                            request.headers.get(TIMESTAMP_HEADER))
    except SignatureRejected as rejected:
        log.warning("webhook call refused: %s", rejected.reason)
        return JSONResponse({"error": rejected.reason}, rejected.status)

    try:
        events = await ctx.run(parse_events, body)
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, 400)

    def apply() -> dict[str, int]:
        with ctx.db.transaction() as session:
            return apply_batch(session, events, privacy=ctx.project.config.privacy).as_dict()

    return JSONResponse(await ctx.run(apply, write=True))


async def healthz(request: Request) -> Response:
    """GET /healthz: 200 if the database answers a query, else 503.

    The JSON body also says whether the webhook key is configured, whether mail can
    be sent, and how many transactional emails wait in the queue or failed.
    """
    ctx: WebContext = request.app.state.web

    def check() -> dict[str, int]:
        with ctx.db.session() as session:
            session.execute(text("select 1"))
            return queue_counts(session)

    webhook = "configured" if ctx.verifier is not None else "not configured"
    try:
        queue = await ctx.run(check)
    except ServiceUnavailable:
        return JSONResponse({"status": "unavailable", "database": "unreachable",
                             "webhook": webhook, "mail": ctx.mail_status}, 503,
                            headers={"Retry-After": "30", "cache-control": "no-store"})
    return JSONResponse({"status": "ok", "database": "ok", "webhook": webhook,
                         "mail": ctx.mail_status, "mail_queue": queue},
                        headers={"cache-control": "no-store"})


class SiteFiles(StaticFiles):
    """The archive's static files; plain 404s while the site has not been built."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory=directory, html=True, check_dir=False)
        self.folder = directory

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.folder.is_dir():
            await PlainTextResponse("Not Found", 404)(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/webhooks/") or "application/json" in request.headers.get(
        "accept", "") or request.headers.get("content-type", "").startswith("application/json")


_TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found",
           405: "Not allowed", 413: "Too large", 429: "Please wait a little",
           503: "Briefly unavailable"}


def _log_too_large(request: Request, limit: int | None = None) -> None:
    """One warning line (not an error: anyone can send a big body) for a refused body."""
    size = request.headers.get("content-length", "unknown")[:20]
    log.warning("refused %s %s: body too large (%s bytes%s)", request.method,
                redact_tokens(request.url.path), size,
                f", limit {limit}" if limit is not None else "")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    ctx: WebContext = request.app.state.web
    if exc.status_code == 413:  # a body found too large while it was read
        _log_too_large(request)
    headers = dict(exc.headers or {})
    detail = exc.detail if exc.status_code in (413, 503) else _TITLES.get(exc.status_code, "")
    if _wants_json(request):
        return JSONResponse({"error": detail or "error"}, exc.status_code, headers=headers)
    title = _TITLES.get(exc.status_code, "Something went wrong")
    message = {404: "There is nothing at this address.",
               405: "This address does not accept that kind of request."}.get(
        exc.status_code, str(detail))
    return ctx.error_page(exc.status_code, title, message, headers)


class BodySizeMiddleware(HTTPMiddleware):
    """Answers 413 at once when Content-Length is over the route's limit.

    Starlette's own limit would find it too, but only after the route started, and
    its way of replacing the answer then passes through our error handling as an
    exception. Bodies without a length are still counted as they arrive (Starlette).
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx: WebContext = scope["app"].state.web
        path = scope.get("path", "")
        if path.startswith("/webhooks/"):
            limit = ctx.limits.webhook_body
        elif path.startswith("/studio/"):
            limit = STUDIO_BODY  # photo uploads; the studio checks each part itself
        else:
            limit = ctx.limits.form_body
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > limit:
            request = Request(scope)
            _log_too_large(request, limit)
            response = await _http_error_page(request, HTTPException(413, "Content Too Large"))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _http_error_page(request: Request, exc: HTTPException) -> Response:
    """:func:`_http_error` without its logging (the caller has logged)."""
    ctx: WebContext = request.app.state.web
    if _wants_json(request):
        return JSONResponse({"error": exc.detail}, exc.status_code)
    return ctx.error_page(exc.status_code, _TITLES[exc.status_code], exc.detail)


class ErrorPageMiddleware(HTTPMiddleware):
    """Turns an unexpected error into a plain 500 page; the traceback goes to the log only.

    Unlike Starlette's last-resort handler it does not re-raise, so uvicorn keeps the
    connection and the client reliably gets the answer.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            request = Request(scope)
            log.error("error answering %s %s", request.method, redact_tokens(request.url.path),
                      exc_info=exc)
            if started:
                raise
            ctx: WebContext = scope["app"].state.web
            if _wants_json(request):
                response: Response = JSONResponse({"error": "internal error"}, 500)
            else:
                response = ctx.error_page(500, "Something went wrong",
                                          "Sorry, that did not work. Please try again later.")
            await response(scope, receive, send)


def create_app(
    project: Project,
    *,
    database: Database | None = None,
    secret: bytes | None = None,
    verifier: WebhookVerifier | None | str = "env",
    send: Mailer | None = None,
    welcome: bool = True,
    limits: Limits | None = None,
    site_dir: Path | None = None,
    clock: Callable[[], float] | None = None,
    trusted_proxies: list[str] | None = None,
) -> Starlette:
    """The web service for ``project`` as an ASGI app.

    Defaults: the project's database, its secret (NEWSLETTER_SECRET or subscribers/.secret),
    the webhook key from SENDGRID_WEBHOOK_PUBLIC_KEY (``verifier="env"``; None turns
    the webhook off), transactional mail through :func:`newsletter.delivery.single.send_one`,
    and the archive from the project's site/ folder. ``clock`` replaces the webhook's
    time source (tests use it for SendGrid's published, old, test vector).
    ``trusted_proxies`` default to NEWSLETTER_TRUSTED_PROXIES, else ``[web]
    trusted_proxies`` in newsletter.toml (see :mod:`newsletter.web.proxy`).

    The default mailer keeps every message in the database queue until the transport
    took it (:class:`newsletter.web.mailing.MailQueue`); a ``send`` given here is used
    as it is (tests).
    """
    limits = limits or Limits.from_env()
    secret = secret if secret is not None else project_secret(project.root)
    if verifier == "env":
        import time

        verifier = verifier_from_env(tolerance=limits.webhook_tolerance,
                                     clock=clock or time.time)
    opened_here = database is None
    db = database or open_project_database(project)
    if send is None:
        _check_transport(project)
    use_secret(db.engine, secret)  # the key of the erasure hashes (sign-ups check them)
    ctx = WebContext(project, db, secret, verifier if not isinstance(verifier, str) else None,
                     send or (lambda **_: None), welcome, limits)
    if send is None:
        ctx.send = MailQueue(db, transport_attempt(project), write_lock=ctx.write_lock)
    trusted = trusted_from_env(project.config.web.trusted_proxies if trusted_proxies is None
                               else trusted_proxies)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with background.running(ctx):
            yield {}
        if opened_here:
            db.dispose()

    webhook_limit = [Middleware(RequestBodyLimitMiddleware, max_body_size=limits.webhook_body)]
    routes = [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/subscribe/{slug}", subscribe_form, methods=["GET", "HEAD"]),
        Route("/subscribe/{slug}", subscribe_post, methods=["POST"]),
        Route("/subscribe/{slug}", subscribe_preflight, methods=["OPTIONS"]),
        Route("/subscribe/{slug}/embed", embed_page, methods=["GET", "HEAD"]),
        Route("/confirm/{token}", confirmation, methods=["GET", "HEAD", "POST"]),
        Route("/unsubscribe/{token}", unsubscribe_page, methods=["GET", "HEAD"]),
        Route("/unsubscribe/{token}", unsubscribe_post, methods=["POST"]),
        Route("/webhooks/sendgrid", sendgrid_webhook, methods=["POST"],
              middleware=webhook_limit),
        # [studio] hosted = true: the studio for a team, login required (docs/studio.md).
        *([Mount("/studio", hosted_app(project, db, secret), middleware=[
            Middleware(RequestBodyLimitMiddleware, max_body_size=STUDIO_BODY)])]
          if project.config.studio.hosted else []),
        Mount("/", SiteFiles(site_dir or project.root / SITE_FOLDER)),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(ProxyHeadersMiddleware, trusted=trusted),
                    Middleware(SecurityHeadersMiddleware), Middleware(BodySizeMiddleware),
                    Middleware(ErrorPageMiddleware)],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
        max_body_size=limits.form_body,
    )
    app.state.web = ctx
    return app


def app_from_env() -> Starlette:
    """The app of the project in NEWSLETTER_PROJECT_DIR (or found from the current folder).

    An app factory for uvicorn's worker processes::

        uvicorn --factory newsletter.web.app:app_from_env --workers 2

    NEWSLETTER_WELCOME=0 turns the welcome email off.
    """
    folder = os.environ.get(PROJECT_ENV)
    project = find_project(Path(folder) if folder else None)
    return create_app(project, welcome=os.environ.get(WELCOME_ENV, "1") != "0")


def prepare_serving(log_format: str = "text", trusted_proxies: str | None = None) -> None:
    """Before :func:`create_app` in `newsletter serve`: log lines, and proxies for every worker."""
    logging.config.dictConfig(log_config(log_format))
    if trusted_proxies is not None:
        os.environ[TRUSTED_PROXIES_ENV] = trusted_proxies  # worker processes inherit it


def run_app(app: Starlette | str, host: str = "127.0.0.1", port: int = 8000, *,
            workers: int = 1, log_format: str = "text") -> None:
    """Serve ``app`` (or, for several workers, an import string of a factory) until stopped.

    uvicorn reads no forwarding headers itself: :class:`ProxyHeadersMiddleware` does,
    from the trusted proxies only.
    """
    import uvicorn  # here, not at the top: only `serve` needs it, and it is slow to load

    uvicorn.run(app, host=host, port=port, workers=workers if isinstance(app, str) else None,
                factory=isinstance(app, str), proxy_headers=False, server_header=False,
                log_config=log_config(log_format), log_level="info",
                # A worker loads the whole app before it answers; give slow machines time.
                timeout_worker_healthcheck=60)
