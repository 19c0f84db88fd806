"""Hardening of the web service: rate-limit keys, CSRF, security headers, path and origin checks.

The rate-limit counters themselves are in the database (:mod:`newsletter.store.ratelimits`).

Request body limits use Starlette's own ``max_body_size`` (see :mod:`newsletter.web.app`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..tokens import BadToken, sign, verify

CSRF_COOKIE = "nl_csrf"
CSRF_FIELD = "csrf_token"
CSRF_MAX_AGE = 4 * 3600
HONEYPOT_FIELD = "website"

# Our own pages: no scripts at all, inline styles only, forms post back to us.
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# The archive site (its pages may use scripts, e.g. the search) may not be framed.
SITE_CSP = "frame-ancestors 'none'; base-uri 'self'; object-src 'none'"
COMMON_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    # Unsubscribe and confirmation tokens are in our URLs: never send them to other sites
    # in Referer. Not no-referrer: then Chrome sends "Origin: null" on our own form posts,
    # which the CSRF check must refuse.
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}
HSTS = "max-age=31536000"


class HTTPMiddleware:
    """A pure ASGI middleware for HTTP requests: subclasses implement :meth:`handle`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class SecurityHeadersMiddleware(HTTPMiddleware):
    """Adds security headers to every response (keeping any a route set itself).

    It also refuses paths that browsers could read as another host (``//evil.example``
    or backslashes), so no redirect we make, e.g. a folder's trailing slash, leaves the site.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if path.startswith("//") or "\\" in path or "\x00" in path:
            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in COMMON_HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("content-security-policy", SITE_CSP)
                if https:
                    headers.setdefault("strict-transport-security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


GMAIL_DOMAINS = ("gmail.com", "googlemail.com")


def mailbox_key(email: str) -> str:
    """The inbox an address delivers to, as far as rate limits go.

    ``Ann.Lee+news@Gmail.com``, ``annlee+x@googlemail.com`` and ``annlee@gmail.com``
    reach one inbox: the ``+tag`` is dropped everywhere, and dots too on Gmail.
    """
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in GMAIL_DOMAINS:
        local, domain = local.replace(".", ""), GMAIL_DOMAINS[0]
    return f"{local}@{domain}"


def rate_key(kind: str, value: str) -> str:
    """The database key of a rate limit: ``kind`` and a hash of ``value``.

    Hashed, so the rate-limit table holds no addresses (personal data) in the clear.
    """
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"{kind}:{digest}"


def client_ip(request: Request) -> str:
    """The client's address (uvicorn puts a trusted proxy's X-Forwarded-For here)."""
    return request.client.host if request.client else "unknown"


# ---------------------------------------------------------------- CSRF


def new_csrf(secret: bytes) -> tuple[str, str]:
    """A (cookie value, form token) pair: the token is signed and names the cookie's nonce.

    A form post must carry both. Another site can fetch a token for itself, but it
    cannot set our cookie in a visitor's browser, so it cannot forge a post for them.
    """
    nonce = secrets.token_urlsafe(16)
    return nonce, csrf_token_for(secret, nonce)


def csrf_token_for(secret: bytes, nonce: str) -> str:
    """A fresh form token for the cookie nonce ``nonce``."""
    return sign(secret, "csrf", {"n": nonce}, max_age=CSRF_MAX_AGE)


def csrf_ok(secret: bytes, cookie: str | None, token: str | None) -> bool:
    """True if ``token`` is ours, unexpired, and made for the nonce in ``cookie``."""
    if not cookie or not token or len(token) > 500:
        return False
    try:
        payload = verify(secret, "csrf", token)
    except BadToken:
        return False
    return hmac.compare_digest(str(payload.get("n", "")), cookie)


def same_origin(request: Request) -> bool:
    """False if the browser says the request comes from another site (Origin/Referer)."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return source != "null"
    origin = urlsplit(source).netloc.lower()
    # Behind a proxy that rewrites Host (nginx by default) the browser's origin is the
    # public address: web_url in newsletter.toml.
    public = urlsplit(request.app.state.web.project.config.service_url).netloc.lower()
    return origin in (request.headers.get("host", "").lower(), public)


# ---------------------------------------------------------------- logs

_TOKEN_PATH = re.compile(r"/(unsubscribe|confirm)/[^\s\"?]+")


def redact_tokens(text: str) -> str:
    """A log line with the tokens of /unsubscribe/... and /confirm/... links hidden."""
    return _TOKEN_PATH.sub(r"/\1/[token]", text)
