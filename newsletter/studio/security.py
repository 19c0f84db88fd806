"""Who is using the studio and what they may do; Host-header and CSRF checks.

Local mode has one user, the person at this computer, who may do everything. The
hosted mode (login, roles: see ``accounts``) replaces :func:`current_user` through
``app.state.users``: every action asks :func:`require` for the permission it needs
("edit", "test", "send", "admin").
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..tokens import BadToken, sign, verify

PERMISSIONS = ("edit", "test", "send", "admin")
CSRF_COOKIE = "nl_studio_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# Forms are small; an upload is at most MAX_UPLOAD_BYTES plus the multipart wrapping.
MAX_BODY_BYTES = MAX_UPLOAD_BYTES + 64 * 1024

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
    "frame-src 'self'; form-action 'self'; frame-ancestors 'self'; base-uri 'none'; "
    "object-src 'none'"
)
# The previewed email: its own inline styles, remote pictures, no scripts.
EMAIL_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
             "frame-ancestors 'self'; base-uri 'none'")
HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cache-control": "no-store",
}


@dataclass(frozen=True)
class User:
    """Someone using the studio, and what they may do."""

    email: str
    name: str
    permissions: frozenset[str] = field(default_factory=lambda: frozenset(PERMISSIONS))
    role: str = ""

    def can(self, permission: str) -> bool:
        """True if this user may do ``permission`` ("edit", "test", "send" or "admin")."""
        return permission in self.permissions


class LoginRequired(Exception):
    """Hosted mode: nobody is logged in on this request (or the login has ended)."""


def local_user(email: str = "") -> User:
    """The one person using a studio on their own computer: allowed everything."""
    return User(email=email, name="You")


def current_user(request: Request) -> User:
    """The user making ``request``. Local mode: the local user; hosted mode plugs in here."""
    users = getattr(request.app.state, "users", None)
    if users is not None:
        return users(request)
    return request.app.state.studio.user


def viewer(request: Request) -> User | None:
    """The current user, or None when nobody is logged in (for error and login pages)."""
    try:
        return current_user(request)
    except LoginRequired:
        return None


_NOT_ALLOWED = {
    "edit": "write issues", "test": "send tests", "send": "send to lists",
    "admin": "manage users and subscribers",
}


def require(request: Request, permission: str) -> User:
    """The current user, if allowed ``permission``; else a 403 that says so.

    Hosted mode, nobody logged in: LoginRequired (the login page, or a 401).
    """
    user = current_user(request)
    if not user.can(permission):
        raise HTTPException(403, f"Your role ({user.role or 'none'}) may not "
                            f"{_NOT_ALLOWED.get(permission, permission)}; ask an admin.")
    return user


# ---------------------------------------------------------------- CSRF


def new_csrf_secret() -> bytes:
    """A fresh signing key for this run's CSRF tokens."""
    return secrets.token_bytes(32)


def csrf_token(secret: bytes, nonce: str) -> str:
    """The form token that goes with the cookie ``nonce``."""
    return sign(secret, "studio-csrf", {"n": nonce})


def csrf_ok(secret: bytes, nonce: str | None, token: str | None) -> bool:
    """True if ``token`` is ours and made for the cookie ``nonce``."""
    if not nonce or not token or len(token) > 500:
        return False
    try:
        payload = verify(secret, "studio-csrf", token)
    except BadToken:
        return False
    return hmac.compare_digest(str(payload.get("n", "")), nonce)


async def check_csrf(request: Request) -> None:
    """Refuse a POST whose CSRF token (form field or header) does not match its cookie."""
    token = request.headers.get(CSRF_HEADER)
    if token is None:
        form = await request.form(max_part_size=MAX_BODY_BYTES)
        value = form.get(CSRF_FIELD)
        token = value if isinstance(value, str) else None
    secret: bytes = request.app.state.studio.csrf_secret
    if not csrf_ok(secret, request.cookies.get(CSRF_COOKIE), token):
        raise HTTPException(403, "This form has expired or did not come from the studio. "
                            "Reload the page and try again.")


# ---------------------------------------------------------------- middleware


def host_allowed(host_header: str, allowed: frozenset[str]) -> bool:
    """True if the Host header names one of ``allowed`` (any port)."""
    name = urlsplit(f"//{host_header}").hostname or ""
    return name.lower() in allowed


class StudioGuard:
    """Refuses foreign Host headers (DNS rebinding), huge bodies and cross-site POSTs;
    adds the CSRF cookie and security headers to every response."""

    def __init__(self, app: ASGIApp, allowed_hosts: frozenset[str] = LOOPBACK_HOSTS,
                 refusal: str = "This address is not the studio. Open it at "
                 "http://127.0.0.1 instead.") -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.refusal = refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if not host_allowed(request.headers.get("host", ""), self.allowed_hosts):
            await PlainTextResponse(self.refusal, status_code=421)(scope, receive, send)
            return
        length = request.headers.get("content-length", "0")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            await PlainTextResponse("That is too big: files may be at most 10 MB.",
                                    status_code=413)(scope, receive, send)
            return
        origin = request.headers.get("origin")
        if request.method == "POST" and origin and not host_allowed(
                urlsplit(origin).netloc, self.allowed_hosts):
            await PlainTextResponse("Cross-site requests are refused.",
                                    status_code=403)(scope, receive, send)
            return
        nonce = request.cookies.get(CSRF_COOKIE)
        if not nonce:
            nonce = secrets.token_urlsafe(16)
            scope.setdefault("state", {})["csrf_nonce_new"] = True
        scope.setdefault("state", {})["csrf_nonce"] = nonce

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("content-security-policy", PAGE_CSP)
                if scope["state"].get("csrf_nonce_new"):
                    headers.append("set-cookie", f"{CSRF_COOKIE}={nonce}; "
                                   f"{cookie_attributes(request)}; SameSite=Strict")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def cookie_attributes(request: Request) -> str:
    """Path (the studio's mount), HttpOnly, and Secure when the request came by https."""
    path = str(request.scope.get("root_path", "")).rstrip("/") or "/"
    secure = "; Secure" if request.url.scheme == "https" else ""
    return f"Path={path}; HttpOnly{secure}"


def page_csrf_token(request: Request) -> str:
    """The token for the forms of the page answering ``request``."""
    return csrf_token(request.app.state.studio.csrf_secret, request.state.csrf_nonce)
