"""The web service as one Starlette app: sign-up, unsubscribe, SendGrid webhook, archive, health.

``create_app(project)`` builds it; ``newsletter serve`` runs it under uvicorn.
Routes:

=======================  =====================================================
GET/POST /subscribe/SLUG  sign-up form; POST takes the form or JSON
GET/POST /confirm/TOKEN   double opt-in confirmation (page with a button / do it)
GET/POST /unsubscribe/T   unsubscribe page / unsubscribe (also RFC 8058 one-click)
POST /webhooks/sendgrid   SendGrid's signed Event Webhook
GET /healthz              200 if the database answers, else 503
GET /...                  the built archive site (the project's site/ folder)
=======================  =====================================================
"""

from __future__ import annotations

import contextlib
import logging
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

from ..project import Project
from ..store import Database, open_project_database, ratelimits
from ..store.events import apply_batch, prune_event_ids
from ..tokens import project_secret
from .context import Limits, Mailer, ServiceUnavailable, WebContext, log
from .security import HTTPMiddleware, SecurityHeadersMiddleware, redact_tokens
from .signup import confirmation, subscribe_form, subscribe_post
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
EVENT_ID_DAYS = 30  # SendGrid retries for 72 hours; ids are kept far longer than that


def _send_one_mailer(project: Project) -> Mailer:
    from ..delivery.transports import api_key_from_env, transport_name

    if transport_name(project, None) == "sendgrid":
        api_key_from_env()  # no key: refuse to start, rather than drop every confirmation

    def send(*, to: str, subject: str, html: str, text: str) -> None:
        from ..delivery.single import send_one

        send_one(project, to=to, subject=subject, html=html, text=text)

    return send


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
    """GET /healthz: the database answers a query (200), or not (503)."""
    ctx: WebContext = request.app.state.web

    def check() -> None:
        with ctx.db.engine.connect() as connection:
            connection.execute(text("select 1"))

    try:
        await ctx.run(check)
    except ServiceUnavailable:
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503,
                            headers={"Retry-After": "30"})
    return JSONResponse({"status": "ok", "database": "ok"},
                        headers={"cache-control": "no-store"})


def _forget_old_event_ids(ctx: WebContext) -> None:
    """Drop webhook event ids older than SendGrid's retry window, and ended rate limits.

    Run on start-up.
    """
    with ctx.db.transaction() as session:
        forgotten = prune_event_ids(session, EVENT_ID_DAYS)
        ratelimits.forget_old(session, older_than=int(ctx.clock()) - ctx.longest_window())
    if forgotten:
        log.info("forgot %d webhook event ids older than %d days", forgotten, EVENT_ID_DAYS)


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
        webhook = scope.get("path", "").startswith("/webhooks/")
        limit = ctx.limits.webhook_body if webhook else ctx.limits.form_body
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
) -> Starlette:
    """The web service for ``project`` as an ASGI app.

    Defaults: the project's database, its secret (NEWSLETTER_SECRET or subscribers/.secret),
    the webhook key from SENDGRID_WEBHOOK_PUBLIC_KEY (``verifier="env"``; None turns
    the webhook off), transactional mail through :func:`newsletter.delivery.single.send_one`,
    and the archive from the project's site/ folder. ``clock`` replaces the webhook's
    time source (tests use it for SendGrid's published, old, test vector).
    """
    limits = limits or Limits()
    secret = secret if secret is not None else project_secret(project.root)
    if verifier == "env":
        import time

        verifier = verifier_from_env(tolerance=limits.webhook_tolerance,
                                     clock=clock or time.time)
    opened_here = database is None
    db = database or open_project_database(project)
    ctx = WebContext(project, db, secret, verifier if not isinstance(verifier, str) else None,
                     send or _send_one_mailer(project), welcome, limits)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        with contextlib.suppress(ServiceUnavailable):  # housekeeping only: start anyway
            await ctx.run(_forget_old_event_ids, ctx, write=True)
        yield {}
        if opened_here:
            db.dispose()

    webhook_limit = [Middleware(RequestBodyLimitMiddleware, max_body_size=limits.webhook_body)]
    routes = [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/subscribe/{slug}", subscribe_form, methods=["GET", "HEAD"]),
        Route("/subscribe/{slug}", subscribe_post, methods=["POST"]),
        Route("/confirm/{token}", confirmation, methods=["GET", "HEAD", "POST"]),
        Route("/unsubscribe/{token}", unsubscribe_page, methods=["GET", "HEAD"]),
        Route("/unsubscribe/{token}", unsubscribe_post, methods=["POST"]),
        Route("/webhooks/sendgrid", sendgrid_webhook, methods=["POST"],
              middleware=webhook_limit),
        Mount("/", SiteFiles(site_dir or project.root / SITE_FOLDER)),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeadersMiddleware), Middleware(BodySizeMiddleware),
                    Middleware(ErrorPageMiddleware)],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
        max_body_size=limits.form_body,
    )
    app.state.web = ctx
    return app


class RedactTokens(logging.Filter):
    """Hides unsubscribe and confirmation tokens in uvicorn's access log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(redact_tokens(a) if isinstance(a, str) else a
                                for a in record.args)
        return True


def run_app(app: Starlette, host: str = "127.0.0.1", port: int = 8000, *,
            forwarded_allow_ips: str | None = None) -> None:
    """Serve ``app`` under uvicorn until interrupted (``newsletter serve``)."""
    import uvicorn

    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
    config = uvicorn.Config(
        app, host=host, port=port, proxy_headers=True, server_header=False,
        forwarded_allow_ips=forwarded_allow_ips or os.environ.get("FORWARDED_ALLOW_IPS",
                                                                   "127.0.0.1"),
        log_level="info",
    )
    uvicorn.Server(config).run()
