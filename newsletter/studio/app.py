"""The studio's routes: thin handlers that ask permission, then call the library.

GET  /                          the issues, newest first; POST /issues makes the next one
GET  /issues/NAME               the editor; POST saves (Save, Add item, Remove, Move)
POST /issues/NAME/autosave      save on a pause in typing: diagnostics and state back
POST /issues/NAME/links         Add from link          POST /issues/NAME/image  a photo
GET  /issues/NAME/email.html    the preview (?dark=1)  GET /issues/NAME/email.txt
GET  /issues/NAME/preflight     the Preflight section, quick checks; POST: the full run
POST /issues/NAME/test          Send test
GET  /issues/NAME/send          the summary; POST with the list's name typed: the send
GET  /sends/ID                  its progress (GET /sends/ID/status, polled)
POST /issues/NAME/cancel        cancel a scheduled send
GET/POST /login, POST /logout   hosted mode (``accounts``); review links (``reviews``);
/reports, /issues/NAME/report..., /lists/LIST/health (``reports``);
/subscribers... (``subscribers``) and /admin/... (``admin``) for admins
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..delivery.status import cancel_send
from ..errors import NewsletterError
from ..gitsave import author, commit_file
from ..issue_writer import set_item_field
from ..pipeline import new_issue
from ..project import Project
from ..store import Database
from ..tokens import SECRET_ENV
from . import admin, preview, reports, reviews, subscribers
from .accounts import LoginGate, hosted_user, login, login_page, logout
from .editor import Conflict, editor_view, form_values, issue_path, save_form
from .forms import GENERAL, ITEM_ORDER, LABELS, field_name, place
from .images import MAX_BYTES, media_file, store_image
from .issues import issue_rows
from .links import add_from_links
from .preflight_panel import preflight_panel
from .security import (
    EMAIL_CSP,
    LOOPBACK_HOSTS,
    MAX_BODY_BYTES,
    LoginRequired,
    StudioGuard,
    User,
    check_csrf,
    current_user,
    local_user,
    page_csrf_token,
    require,
)
from .sends import plan_list_send, send_test, summarise
from .state import HERE, Hosted, StudioState, audit, page, redirect, render, root, state

FIELD_KINDS = {"url": "url", "summary": "markdown", "published": "date", "section": "section"}
FORM_FIELDS = [(name, LABELS[name], FIELD_KINDS.get(name, "text")) for name in ITEM_ORDER]


def _sending_defaults(request: Request) -> dict[str, str]:
    config = state(request).project.config
    return {"default_list": config.delivery.default_list or "",
            "test_address": current_user(request).email or config.sender.reply_to or ""}


# ---------------------------------------------------------------- issues and editor


async def issues_page(request: Request) -> Response:
    require(request, "edit")
    rows = await run_in_threadpool(issue_rows, state(request).project)
    return page(request, "issues.html", rows=rows)


async def create_issue(request: Request) -> Response:
    require(request, "edit")
    await check_csrf(request)
    path = await run_in_threadpool(new_issue, state(request).project)
    await run_in_threadpool(audit, request, "created", path.stem)
    return redirect(request, f"/issues/{path.stem}")


async def editor_page(request: Request, conflict: Conflict | None = None) -> Response:
    require(request, "edit")
    studio = state(request)
    project = studio.project
    path = issue_path(project, request.path_params["name"])
    view = await run_in_threadpool(editor_view, project, path, studio.cache)
    said = await run_in_threadpool(reviews.issue_reviews, studio, path.stem)
    return page(request, "editor.html", view=view, fields=FORM_FIELDS, conflict=conflict,
                editor_id=secrets.token_urlsafe(8), sending=_sending_defaults(request),
                reviews=said)


async def _save(request: Request) -> tuple[Path, Any, str | Conflict]:
    require(request, "edit")
    await check_csrf(request)
    studio = state(request)
    path = issue_path(studio.project, request.path_params["name"])
    form = await request.form()
    editor = str(form.get("editor_id") or "")
    own = studio.written.get(editor) if editor else None
    outcome = await run_in_threadpool(save_form, path, form, None, own)
    if isinstance(outcome, str) and editor:
        with studio.lock:
            studio.written[editor] = outcome
    if isinstance(outcome, str):
        await run_in_threadpool(audit, request, "saved", path.stem)
    return path, form, outcome


async def save(request: Request) -> Response:
    path, form, outcome = await _save(request)
    if isinstance(outcome, Conflict):
        return page(request, "conflict.html", status=409, name=path.stem, conflict=outcome,
                    values=list(form_values(form).items()))
    action = str(form.get("action") or "save")
    anchor = "#item-" + str(len(form.getlist("item"))) if action == "add" else ""
    query = ""
    studio = state(request)
    if studio.project.config.studio.git_commit:
        result = await run_in_threadpool(commit_file, studio.project.root, path,
                                         _git_author(request, studio))
        if result.note:
            query = f"?note={studio.note('info', [result.note])}"
    return redirect(request, f"/issues/{path.stem}{query}{anchor}")


def _git_author(request: Request, studio: StudioState) -> str | None:
    """Hosted: the logged-in user; local: None, git's own configured identity."""
    if studio.hosted is None:
        return None
    # Accounts keep only an address (User.name is its local part), so the address is the name.
    return author("", current_user(request).email)


async def autosave(request: Request) -> Response:
    path, form, outcome = await _save(request)
    studio = state(request)
    checked = await run_in_threadpool(studio.cache.check, studio.project, path)
    slots = [f"d-{name}" for name in ("subject", "preheader", "intro", GENERAL)]
    for raw in form.getlist("item"):
        if isinstance(raw, str) and raw.isdigit():
            slots += [f"d-{field_name(int(raw), name)}" for name in ITEM_ORDER]
    conflict = outcome if isinstance(outcome, Conflict) else None
    when = dt.datetime.now().strftime("%H:%M:%S")
    html = render(
        request, "autosave.html",
        state="Not saved: the file changed on disk" if conflict else f"Saved at {when}",
        new_hash=None if conflict else outcome, conflict=conflict, slots=slots,
        placed=place(checked.diagnostics), name=path.stem, errors=len(checked.errors),
        csrf=page_csrf_token(request), sending=_sending_defaults(request))
    return HTMLResponse(html, headers={"HX-Trigger": "studio-saved"})


async def add_links(request: Request) -> Response:
    require(request, "edit")
    await check_csrf(request)
    studio = state(request)
    path = issue_path(studio.project, request.path_params["name"])
    form = await request.form()
    kind, lines = await run_in_threadpool(add_from_links, path, str(form.get("urls") or ""))
    await run_in_threadpool(audit, request, "saved", path.stem)
    return redirect(request, f"/issues/{path.stem}?note={studio.note(kind, lines)}")


async def upload_image(request: Request) -> Response:
    require(request, "edit")
    await check_csrf(request)
    studio = state(request)
    project = studio.project
    path = issue_path(project, request.path_params["name"])
    form = await request.form(max_part_size=MAX_BODY_BYTES)
    upload, index = form.get("photo"), str(form.get("item") or "")
    if not isinstance(upload, UploadFile) or not upload.filename or not index.isdigit():
        raise NewsletterError("Choose a photo first, then press Upload photo.")
    data = await upload.read(MAX_BYTES + 1)
    stored = await run_in_threadpool(store_image, project, data, upload.filename)
    await run_in_threadpool(set_item_field, path, int(index), "image", stored.url)
    await run_in_threadpool(audit, request, "saved", path.stem)
    note = studio.note("info", [f"Photo added to item {int(index) + 1} ({stored.width}×"
                               f"{stored.height} px). Describe it in Image description."])
    return redirect(request, f"/issues/{path.stem}?note={note}#item-{index}")


# ---------------------------------------------------------------- preview and media


async def email_html(request: Request) -> Response:
    require(request, "edit")
    studio = state(request)
    project = studio.project
    path = issue_path(project, request.path_params["name"])
    checked = await run_in_threadpool(studio.cache.check, project, path)
    html = preview.email_html(project, checked, dark=request.query_params.get("dark") == "1",
                              root=root(request))
    if html is None:
        html = ("<!doctype html><html lang=en><title>Not yet</title><p style='font:16px "
                "sans-serif;padding:16px'>The preview appears once the errors are fixed.</p>")
    return HTMLResponse(html, headers={"content-security-policy": EMAIL_CSP})


async def email_text(request: Request) -> Response:
    require(request, "edit")
    studio = state(request)
    project = studio.project
    path = issue_path(project, request.path_params["name"])
    checked = await run_in_threadpool(studio.cache.check, project, path)
    text = preview.email_text(project, checked)
    return PlainTextResponse(text or "The preview appears once the errors are fixed.",
                             headers={"content-security-policy": EMAIL_CSP})


async def preflight(request: Request) -> Response:
    """The section after each save: the quick checks (see :mod:`.preflight_panel`)."""
    require(request, "edit")
    return await _preflight_section(request, full=False)


async def full_preflight(request: Request) -> Response:
    """The button: every check, links, pictures and SpamAssassin included."""
    require(request, "edit")
    await check_csrf(request)
    return await _preflight_section(request, full=True)


async def _preflight_section(request: Request, *, full: bool) -> Response:
    studio = state(request)
    project = studio.project
    path = issue_path(project, request.path_params["name"])
    checked = await run_in_threadpool(studio.cache.check, project, path)
    panel = await run_in_threadpool(preflight_panel, project, checked, studio.preflights,
                                    full=full)
    return HTMLResponse(render(request, "_preflight.html", panel=panel, name=path.stem,
                               csrf=page_csrf_token(request)))


async def media(request: Request) -> Response:
    require(request, "edit")
    found = media_file(state(request).project, request.path_params["file"])
    if found is None:
        raise HTTPException(404, "There is no such picture.")
    return FileResponse(found)


# ---------------------------------------------------------------- sending


async def test_send(request: Request) -> Response:
    require(request, "test")
    await check_csrf(request)
    studio = state(request)
    project = studio.project
    path = issue_path(project, request.path_params["name"])
    form = await request.form()
    report = await run_in_threadpool(send_test, project, path, str(form.get("addresses") or ""))
    await run_in_threadpool(audit, request, "tested", path.stem,
                            f"to {report.recipients_accepted} address(es)")
    lines = [f"Test sent to {report.recipients_accepted} address(es), with [TEST] before the "
             "subject."]
    if report.outbox is not None:
        lines.append(f"Transport outbox: the message is in {report.outbox} (an .eml file).")
    return redirect(request, f"/issues/{path.stem}?note={studio.note('info', lines)}")


async def send_page(request: Request, wrong: bool = False) -> Response:
    require(request, "send")
    project = state(request).project
    path = issue_path(project, request.path_params["name"])
    at = request.query_params.get("at", "")
    plan = await run_in_threadpool(plan_list_send, project, path,
                                   request.query_params.get("list"), at)
    if plan.database is not None:
        plan.database.dispose()  # only the summary is needed here
    return page(request, "send.html", name=path.stem, summary=summarise(plan), wrong=wrong,
                at=at)


async def start_send(request: Request) -> Response:
    require(request, "send")
    await check_csrf(request)
    studio = state(request)
    project = studio.project
    path = issue_path(project, request.path_params["name"])
    form = await request.form()
    slug, at = str(form.get("list") or ""), str(form.get("at") or "")
    plan = await run_in_threadpool(plan_list_send, project, path, slug or None, at)
    if str(form.get("confirm") or "").strip() != plan.list_slug:
        if plan.database is not None:
            plan.database.dispose()
        return page(request, "send.html", status=400, name=path.stem, summary=summarise(plan),
                    wrong=True, at=at)
    job = studio.jobs.start(plan)
    await run_in_threadpool(audit, request, "scheduled" if at else "sent", path.stem,
                            f"to {plan.list_slug}" + (f" at {at}" if at else ""))
    return redirect(request, f"/sends/{job.id}")


async def cancel_scheduled(request: Request) -> Response:
    require(request, "send")
    await check_csrf(request)
    studio = state(request)
    project = studio.project
    path = issue_path(project, request.path_params["name"])
    form = await request.form()
    result = await run_in_threadpool(cancel_send, project, path, str(form.get("list") or "")
                                     or None)
    await run_in_threadpool(audit, request, "cancelled", result.issue_name,
                            f"to {result.list_slug}")
    note = studio.note("info", [
        f"Cancelled: {result.issue_name} to {result.list_slug} ({result.recipients:,} "
        f"recipients) scheduled for {result.send_at:%Y-%m-%d %H:%M} UTC. You can send or "
        "schedule it again."])
    return redirect(request, f"/?note={note}")


def _job(request: Request) -> Any:
    job = state(request).jobs.get(request.path_params["job"])
    if job is None:
        raise HTTPException(404, "There is no such send in this studio.")
    return job


async def send_progress(request: Request) -> Response:
    require(request, "send")
    return page(request, "progress.html", job=_job(request))


async def send_status(request: Request) -> Response:
    require(request, "send")
    html = render(request, "_progress.html", job=_job(request))
    return HTMLResponse(html)


# ---------------------------------------------------------------- errors


async def _newsletter_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NewsletterError)
    back = root(request) + (f"/issues/{request.path_params['name']}"
                            if "name" in request.path_params else "/")
    message = exc.message[:1] .upper() + exc.message[1:]
    return page(request, "message.html", status=400, heading="That did not work",
                kind="error", message=message, hint=exc.hint or "", back=back,
                back_label="Back" if back != "/" else None)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.headers.get("hx-request"):
        return PlainTextResponse(exc.detail, status_code=exc.status_code)
    return page(request, "message.html", status=exc.status_code, heading="That did not work",
                kind="error", message=exc.detail, hint="", back=root(request) + "/",
                back_label=None)


async def _login_required(request: Request, exc: Exception) -> Response:
    return PlainTextResponse("Log in to the studio first.", status_code=401)


ROUTES = [
    Route("/", issues_page),
    Route("/issues", create_issue, methods=["POST"]),
    Route("/issues/{name}", editor_page),
    Route("/issues/{name}", save, methods=["POST"]),
    Route("/issues/{name}/autosave", autosave, methods=["POST"]),
    Route("/issues/{name}/links", add_links, methods=["POST"]),
    Route("/issues/{name}/image", upload_image, methods=["POST"]),
    Route("/issues/{name}/email.html", email_html),
    Route("/issues/{name}/email.txt", email_text),
    Route("/issues/{name}/preflight", preflight),
    Route("/issues/{name}/preflight", full_preflight, methods=["POST"]),
    Route("/issues/{name}/test", test_send, methods=["POST"]),
    Route("/issues/{name}/send", send_page),
    Route("/issues/{name}/send", start_send, methods=["POST"]),
    Route("/issues/{name}/cancel", cancel_scheduled, methods=["POST"]),
    Route("/sends/{job}", send_progress),
    Route("/sends/{job}/status", send_status),
    Route("/media/{file}", media),
    *reviews.ROUTES,
    *reports.ROUTES,
    *subscribers.ROUTES,
    *admin.ROUTES,
    Mount("/static", StaticFiles(directory=HERE / "static")),
]
HOSTED_ROUTES = [
    Route("/login", login_page),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]


def hosted_hosts(project: Project, extra: tuple[str, ...] = ()) -> frozenset[str]:
    """The host names a hosted studio answers to: web_url's, [studio] allowed_hosts, extra."""
    config = project.config
    names = {urlsplit(config.web_url).hostname or ""} if config.web_url else set()
    names |= {name.lower() for name in (*config.studio.allowed_hosts, *extra)}
    return frozenset(name for name in names if name)


def create_app(project_root: Path, *, user: User | None = None,
               allowed_hosts: frozenset[str] = LOOPBACK_HOSTS,
               hosted: Hosted | None = None) -> Starlette:
    """The studio for the project at ``project_root``.

    Local mode (the default): one user, no login, answering to ``allowed_hosts``.
    With ``hosted``: login required, roles, the audit log (see :func:`hosted_app`).
    """
    guard = Middleware(StudioGuard, allowed_hosts=allowed_hosts, refusal=(
        "This address is not the studio. Open it at http://127.0.0.1 instead." if not hosted
        else "This host name is not one the studio answers to ([studio] allowed_hosts)."))
    middleware = [guard, Middleware(RequestBodyLimitMiddleware, max_body_size=MAX_BODY_BYTES)]
    if hosted is not None:
        middleware.append(Middleware(LoginGate))
    app = Starlette(
        routes=(HOSTED_ROUTES if hosted else []) + ROUTES,
        middleware=middleware,
        exception_handlers={NewsletterError: _newsletter_error, HTTPException: _http_error,
                            LoginRequired: _login_required},
    )
    project = Project(project_root)
    studio = StudioState(project.root, user or local_user(project.config.sender.reply_to or ""),
                         hosted=hosted)
    if hosted is not None:
        # Stable across restarts and workers: forms and review links keep working.
        studio.csrf_secret = hashlib.sha256(hosted.secret + b"\0studio-csrf").digest()
        studio.review_secret = hosted.secret
        app.state.users = hosted_user
    else:
        from_env = os.environ.get(SECRET_ENV, "")
        if len(from_env) >= 16:
            studio.review_secret = from_env.encode()
    app.state.studio = studio
    return app


def hosted_app(project: Project, database: Database, secret: bytes, *,
               extra_hosts: tuple[str, ...] = ()) -> Starlette:
    """The studio for a team: ``newsletter studio --host`` and ``/studio`` in serve."""
    settings = project.config.studio
    hosts = hosted_hosts(project, extra_hosts)
    if not hosts:
        raise NewsletterError(
            "The hosted studio does not know its own address, so it would refuse every "
            "request.",
            hint="Set web_url in [newsletter] (like https://news.example.org), or list the "
            "host names in [studio] allowed_hosts of newsletter.toml.")
    return create_app(project.root, allowed_hosts=hosts, hosted=Hosted(
        database=database, secret=secret, session_seconds=settings.session_hours * 3600,
        review_seconds=settings.review_days * 86400))
