"""Admin pages: the audit log, and the studio's users (the same store functions as
`newsletter users` and `newsletter audit`)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import NewsletterError
from ..store import ROLES, audit_entries
from ..store.users import add_user, list_users, remove_user, set_role
from .security import check_csrf, require
from .state import audit, page, redirect, state

SHOWN = 500


async def audit_page(request: Request) -> Response:
    """GET /admin/audit: the newest entries first (?user= to see one person's)."""
    require(request, "admin")
    studio = state(request)
    actor = request.query_params.get("user", "").strip()[:320] or None

    def load() -> list[tuple[Any, str, str, str, str]]:
        with studio.database.transaction() as session:
            return [(e.at, e.actor, e.action, e.target, e.detail)
                    for e in audit_entries(session, actor=actor, limit=SHOWN)]

    return page(request, "audit.html", entries=await run_in_threadpool(load),
                actor=actor or "")


async def users_page(request: Request) -> Response:
    """GET /admin/users: who may log in, and with which role."""
    require(request, "admin")
    studio = state(request)

    def load() -> list[tuple[str, str, Any]]:
        with studio.database.transaction() as session:
            return [(u.email, u.role, u.last_login_at) for u in list_users(session)]

    return page(request, "users.html", users=await run_in_threadpool(load), roles=ROLES)


async def change_users(request: Request) -> Response:
    """POST /admin/users: add a user, change a role, or remove a user."""
    me = require(request, "admin")
    await check_csrf(request)
    studio = state(request)
    form = await request.form()
    action, email = str(form.get("action") or ""), str(form.get("email") or "").strip()
    role = str(form.get("role") or "")
    if email.lower() == me.email.lower() and action != "add":
        raise NewsletterError("You cannot change or remove your own account here; ask another "
                              "admin, or use `newsletter users` on the server.")

    def change() -> str:
        with studio.database.transaction() as session:
            if action == "add":
                user = add_user(session, email, str(form.get("password") or ""), role)
                return f"{user.email} may now log in as {role}."
            if action == "role":
                user = set_role(session, email, role)
                return f"{user.email} is now {role}."
            if action == "remove":
                return f"{remove_user(session, email)} can no longer log in."
        raise NewsletterError("Choose what to do: Add user, Change role or Remove.")

    message = await run_in_threadpool(change)
    what = {"add": "user added", "role": "role changed", "remove": "user removed"}[action]
    await run_in_threadpool(audit, request, what, email, role if action != "remove" else "")
    return redirect(request, f"/admin/users?note={studio.note('info', [message])}")


ROUTES = [
    Route("/admin/audit", audit_page),
    Route("/admin/users", users_page),
    Route("/admin/users", change_users, methods=["POST"]),
]
