"""Hosted mode: logging in and out, the session cookie, login rate limits.

The session is a cookie signed with the project's secret (:mod:`newsletter.tokens`),
HttpOnly, SameSite=Lax, Secure on https, expiring after ``session_hours``. It names the
account and its ``session_epoch``: removing a user, or changing their role or password,
ends their sessions. :class:`LoginGate` refuses every page but the login page, the
static files and review links to anyone not logged in.
"""

from __future__ import annotations

import hashlib
import time
from urllib.parse import quote

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..emails import InvalidEmail, stored_email
from ..store import ROLE_PERMISSIONS, StudioUser, ratelimits, record_action
from ..store.users import verify_login
from ..tokens import BadToken, sign, verify
from .security import LoginRequired, User, check_csrf, cookie_attributes
from .state import Hosted, audit, page, redirect, root, state

SESSION_COOKIE = "nl_studio_session"
PUBLIC = ("/login", "/static/", "/review/")
WRONG = "Wrong email or password."


def _hosted(request: Request) -> Hosted:
    hosted = state(request).hosted
    assert hosted is not None
    return hosted


def _load_user(hosted: Hosted, token: str | None) -> User:
    if not token or len(token) > 500:
        raise LoginRequired
    try:
        payload = verify(hosted.secret, "studio-session", token)
        user_id, epoch = int(payload["u"]), int(payload["e"])
    except (BadToken, KeyError, TypeError, ValueError):
        raise LoginRequired from None
    with Session(hosted.database.engine) as session:
        account = session.get(StudioUser, user_id)
        if account is None or account.session_epoch != epoch:
            raise LoginRequired
        return User(email=account.email, name=account.email.split("@")[0],
                    permissions=ROLE_PERMISSIONS.get(account.role, frozenset()),
                    role=account.role)


def hosted_user(request: Request) -> User:
    """The logged-in user of ``request`` (``app.state.users`` in hosted mode)."""
    found = request.scope.get("state", {}).get("studio_user")
    if isinstance(found, User):
        return found
    raise LoginRequired


class LoginGate:
    """Looks up the session once per request; without one, only public paths answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        hosted = state(request).hosted
        assert hosted is not None
        path = scope["path"][len(root(request)):] or "/"
        try:
            user = await run_in_threadpool(_load_user, hosted,
                                           request.cookies.get(SESSION_COOKIE))
            scope.setdefault("state", {})["studio_user"] = user
        except LoginRequired:
            if not path.startswith(PUBLIC):
                await _refuse(request, path)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _refuse(request: Request, path: str) -> Response:
    if request.method in ("GET", "HEAD") and not request.headers.get("hx-request"):
        target = path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{root(request)}/login?next={quote(target)}", status_code=303)
    return PlainTextResponse("Log in to the studio first.", status_code=401)


def _safe_next(value: str) -> str:
    """Only a path inside the studio (never another site, never //host)."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


async def login_page(request: Request) -> Response:
    """GET /login."""
    return page(request, "login.html", next=_safe_next(request.query_params.get("next", "/")),
                email="", error="")


def _key(kind: str, value: str) -> str:
    return f"studio-login:{kind}:" + hashlib.sha256(value.encode()).hexdigest()[:40]


def _over_limit(hosted: Hosted, email: str, address: str) -> bool:
    now = int(time.time())
    with hosted.database.transaction() as session:
        per_account = ratelimits.hit(session, _key("a", email), window=hosted.login_window,
                                     now=now)
        per_address = ratelimits.hit(session, _key("c", address), window=hosted.login_window,
                                     now=now)
    return per_account > hosted.login_per_account or per_address > hosted.login_per_address


def _log_in(hosted: Hosted, email: str, password: str, address: str) -> tuple[int, int] | None:
    with hosted.database.transaction() as session:
        account = verify_login(session, email, password)
        if account is None:
            record_action(session, email[:120], "login failed", "", f"from {address}")
            return None
        record_action(session, account.email, "login", "", f"from {address}")
        return account.id, account.session_epoch


async def login(request: Request) -> Response:
    """POST /login: rate-limited per account and per client address; one message for
    every wrong email or password."""
    await check_csrf(request)
    hosted = _hosted(request)
    form = await request.form()
    typed, password = str(form.get("email") or "").strip(), str(form.get("password") or "")
    target = _safe_next(str(form.get("next") or "/"))
    try:
        email = stored_email(typed).lower()  # as find_user looks it up
    except InvalidEmail:
        email = typed.lower()
    address = request.client.host if request.client else "unknown"
    if await run_in_threadpool(_over_limit, hosted, email, address):
        minutes = hosted.login_window // 60
        return page(request, "login.html", status=429, next=target, email=typed,
                    error=f"Too many attempts. Wait {minutes} minutes, then try again; an "
                    "admin can set a new password with `newsletter users set-password`.")
    found = await run_in_threadpool(_log_in, hosted, email, password, address)
    if found is None:
        return page(request, "login.html", status=400, next=target, email=typed, error=WRONG)
    token = sign(hosted.secret, "studio-session", {"u": found[0], "e": found[1]},
                 max_age=hosted.session_seconds)
    response = redirect(request, target)
    response.headers.append("set-cookie", f"{SESSION_COOKIE}={token}; "
                            f"{cookie_attributes(request)}; SameSite=Lax; "
                            f"Max-Age={hosted.session_seconds}")
    return response


async def logout(request: Request) -> Response:
    """POST /logout: the session cookie is removed."""
    await check_csrf(request)
    if request.scope.get("state", {}).get("studio_user") is None:
        raise HTTPException(401, "You are not logged in.")
    await run_in_threadpool(audit, request, "logout")
    response = redirect(request, "/login")
    response.headers.append("set-cookie", f"{SESSION_COOKIE}=; {cookie_attributes(request)}; "
                            "SameSite=Lax; Max-Age=0")
    return response
