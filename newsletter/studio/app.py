"""The studio's routes: thin handlers that ask permission, then call the library.

GET  /                          the issues, newest first; POST /issues makes the next one
GET  /issues/NAME               the editor; POST saves (Save, Add item, Remove, Move)
POST /issues/NAME/autosave      save on a pause in typing: diagnostics and state back
POST /issues/NAME/links         Add from link          POST /issues/NAME/image  a photo
GET  /issues/NAME/email.html    the preview (?dark=1)  GET /issues/NAME/email.txt
POST /issues/NAME/test          Send test
GET  /issues/NAME/send          the summary; POST with the list's name typed: the send
GET  /sends/ID                  its progress (GET /sends/ID/status, polled)
POST /issues/NAME/cancel        cancel a scheduled send
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..delivery.status import cancel_send
from ..errors import NewsletterError
from ..issue_writer import set_item_field
from ..pipeline import new_issue
from ..project import Project
from . import preview
from .editor import Conflict, RenderCache, editor_view, form_values, issue_path, save_form
from .forms import GENERAL, ITEM_ORDER, LABELS, field_name, place
from .images import MAX_BYTES, media_file, store_image
from .issues import issue_rows
from .links import add_from_links
from .security import (
    EMAIL_CSP,
    LOOPBACK_HOSTS,
    MAX_BODY_BYTES,
    StudioGuard,
    User,
    check_csrf,
    current_user,
    local_user,
    new_csrf_secret,
    page_csrf_token,
    require,
)
from .sends import SendJobs, plan_list_send, send_test, summarise

HERE = Path(__file__).parent
FIELD_KINDS = {"url": "url", "summary": "markdown", "published": "date", "section": "section"}
FORM_FIELDS = [(name, LABELS[name], FIELD_KINDS.get(name, "text")) for name in ITEM_ORDER]


@dataclass(frozen=True)
class Note:
    """A message shown once at the top of the next page."""

    kind: str
    lines: list[str]


@dataclass
class StudioState:
    """What one running studio keeps: the project, its user, caches, notes and sends."""

    project_root: Path
    user: User
    csrf_secret: bytes = field(default_factory=new_csrf_secret)
    cache: RenderCache = field(default_factory=RenderCache)
    jobs: SendJobs = field(default_factory=SendJobs)
    notes: dict[str, Note] = field(default_factory=dict)
    # The hash each open editor last wrote: its own autosave is not someone else's change.
    written: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    _project: tuple[tuple[int, int], Project] | None = None

    @property
    def project(self) -> Project:
        """The project, its newsletter.toml read again whenever the file changes."""
        try:
            info = (self.project_root / "newsletter.toml").stat()
            stamp = (info.st_mtime_ns, info.st_size)
        except OSError:
            stamp = (0, 0)
        cached = self._project
        if cached is None or cached[0] != stamp:
            cached = self._project = (stamp, Project(self.project_root))
        return cached[1]

    def note(self, kind: str, lines: list[str]) -> str:
        key = secrets.token_urlsafe(8)
        with self.lock:
            if len(self.notes) > 200:
                self.notes.clear()
            self.notes[key] = Note(kind, lines)
        return key


_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
    undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
)


def _state(request: Request) -> StudioState:
    return request.app.state.studio


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with what every page needs (user, CSRF token, newsletter name)."""
    state = _state(request)
    note = state.notes.pop(request.query_params.get("note", ""), None)
    context.setdefault("note", note)
    html = _templates.get_template(template).render(
        user=current_user(request), csrf=page_csrf_token(request),
        newsletter_name=state.project.config.name, **context)
    return HTMLResponse(html, status_code=status)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _sending_defaults(request: Request) -> dict[str, str]:
    config = _state(request).project.config
    return {"default_list": config.delivery.default_list or "",
            "test_address": current_user(request).email or config.sender.reply_to or ""}


# ---------------------------------------------------------------- issues and editor


async def issues_page(request: Request) -> Response:
    require(request, "edit")
    rows = await run_in_threadpool(issue_rows, _state(request).project)
    return page(request, "issues.html", rows=rows)


async def create_issue(request: Request) -> Response:
    require(request, "edit")
    await check_csrf(request)
    path = await run_in_threadpool(new_issue, _state(request).project)
    return _redirect(f"/issues/{path.stem}")


async def editor_page(request: Request, conflict: Conflict | None = None) -> Response:
    require(request, "edit")
    state = _state(request)
    project = state.project
    path = issue_path(project, request.path_params["name"])
    view = await run_in_threadpool(editor_view, project, path, state.cache)
    return page(request, "editor.html", view=view, fields=FORM_FIELDS, conflict=conflict,
                editor_id=secrets.token_urlsafe(8), sending=_sending_defaults(request))


async def _save(request: Request) -> tuple[Path, Any, str | Conflict]:
    require(request, "edit")
    await check_csrf(request)
    state = _state(request)
    path = issue_path(state.project, request.path_params["name"])
    form = await request.form()
    editor = str(form.get("editor_id") or "")
    own = state.written.get(editor) if editor else None
    outcome = await run_in_threadpool(save_form, path, form, None, own)
    if isinstance(outcome, str) and editor:
        with state.lock:
            state.written[editor] = outcome
    return path, form, outcome


async def save(request: Request) -> Response:
    path, form, outcome = await _save(request)
    if isinstance(outcome, Conflict):
        return page(request, "conflict.html", status=409, name=path.stem, conflict=outcome,
                    values=list(form_values(form).items()))
    action = str(form.get("action") or "save")
    anchor = "#item-" + str(len(form.getlist("item"))) if action == "add" else ""
    return _redirect(f"/issues/{path.stem}{anchor}")


async def autosave(request: Request) -> Response:
    path, form, outcome = await _save(request)
    state = _state(request)
    checked = await run_in_threadpool(state.cache.check, state.project, path)
    slots = [f"d-{name}" for name in ("subject", "preheader", "intro", GENERAL)]
    for raw in form.getlist("item"):
        if isinstance(raw, str) and raw.isdigit():
            slots += [f"d-{field_name(int(raw), name)}" for name in ITEM_ORDER]
    conflict = outcome if isinstance(outcome, Conflict) else None
    when = dt.datetime.now().strftime("%H:%M:%S")
    html = _templates.get_template("autosave.html").render(
        state="Not saved: the file changed on disk" if conflict else f"Saved at {when}",
        new_hash=None if conflict else outcome, conflict=conflict, slots=slots,
        placed=place(checked.diagnostics), name=path.stem, errors=len(checked.errors),
        csrf=page_csrf_token(request), sending=_sending_defaults(request))
    return HTMLResponse(html, headers={"HX-Trigger": "studio-saved"})


async def add_links(request: Request) -> Response:
    require(request, "edit")
    await check_csrf(request)
    state = _state(request)
    path = issue_path(state.project, request.path_params["name"])
    form = await request.form()
    kind, lines = await run_in_threadpool(add_from_links, path, str(form.get("urls") or ""))
    return _redirect(f"/issues/{path.stem}?note={state.note(kind, lines)}")


async def upload_image(request: Request) -> Response:
    require(request, "edit")
    await check_csrf(request)
    state = _state(request)
    project = state.project
    path = issue_path(project, request.path_params["name"])
    form = await request.form(max_part_size=MAX_BODY_BYTES)
    upload, index = form.get("photo"), str(form.get("item") or "")
    if not isinstance(upload, UploadFile) or not upload.filename or not index.isdigit():
        raise NewsletterError("Choose a photo first, then press Upload photo.")
    data = await upload.read(MAX_BYTES + 1)
    stored = await run_in_threadpool(store_image, project, data, upload.filename)
    await run_in_threadpool(set_item_field, path, int(index), "image", stored.url)
    note = state.note("info", [f"Photo added to item {int(index) + 1} ({stored.width}×"
                               f"{stored.height} px). Describe it in Image description."])
    return _redirect(f"/issues/{path.stem}?note={note}#item-{index}")


# ---------------------------------------------------------------- preview and media


async def email_html(request: Request) -> Response:
    require(request, "edit")
    state = _state(request)
    project = state.project
    path = issue_path(project, request.path_params["name"])
    checked = await run_in_threadpool(state.cache.check, project, path)
    html = preview.email_html(project, checked, dark=request.query_params.get("dark") == "1")
    if html is None:
        html = ("<!doctype html><html lang=en><title>Not yet</title><p style='font:16px "
                "sans-serif;padding:16px'>The preview appears once the errors are fixed.</p>")
    return HTMLResponse(html, headers={"content-security-policy": EMAIL_CSP})


async def email_text(request: Request) -> Response:
    require(request, "edit")
    state = _state(request)
    project = state.project
    path = issue_path(project, request.path_params["name"])
    checked = await run_in_threadpool(state.cache.check, project, path)
    text = preview.email_text(project, checked)
    return PlainTextResponse(text or "The preview appears once the errors are fixed.",
                             headers={"content-security-policy": EMAIL_CSP})


async def media(request: Request) -> Response:
    found = media_file(_state(request).project, request.path_params["file"])
    if found is None:
        raise HTTPException(404, "There is no such picture.")
    return FileResponse(found)


# ---------------------------------------------------------------- sending


async def test_send(request: Request) -> Response:
    require(request, "test")
    await check_csrf(request)
    state = _state(request)
    project = state.project
    path = issue_path(project, request.path_params["name"])
    form = await request.form()
    report = await run_in_threadpool(send_test, project, path, str(form.get("addresses") or ""))
    lines = [f"Test sent to {report.recipients_accepted} address(es), with [TEST] before the "
             "subject."]
    if report.outbox is not None:
        lines.append(f"Transport outbox: the message is in {report.outbox} (an .eml file).")
    return _redirect(f"/issues/{path.stem}?note={state.note('info', lines)}")


async def send_page(request: Request, wrong: bool = False) -> Response:
    require(request, "send")
    project = _state(request).project
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
    state = _state(request)
    project = state.project
    path = issue_path(project, request.path_params["name"])
    form = await request.form()
    slug, at = str(form.get("list") or ""), str(form.get("at") or "")
    plan = await run_in_threadpool(plan_list_send, project, path, slug or None, at)
    if str(form.get("confirm") or "").strip() != plan.list_slug:
        if plan.database is not None:
            plan.database.dispose()
        return page(request, "send.html", status=400, name=path.stem, summary=summarise(plan),
                    wrong=True, at=at)
    job = state.jobs.start(plan)
    return _redirect(f"/sends/{job.id}")


async def cancel_scheduled(request: Request) -> Response:
    require(request, "send")
    await check_csrf(request)
    state = _state(request)
    project = state.project
    path = issue_path(project, request.path_params["name"])
    form = await request.form()
    result = await run_in_threadpool(cancel_send, project, path, str(form.get("list") or "")
                                     or None)
    note = state.note("info", [
        f"Cancelled: {result.issue_name} to {result.list_slug} ({result.recipients:,} "
        f"recipients) scheduled for {result.send_at:%Y-%m-%d %H:%M} UTC. You can send or "
        "schedule it again."])
    return _redirect(f"/?note={note}")


def _job(request: Request) -> Any:
    job = _state(request).jobs.get(request.path_params["job"])
    if job is None:
        raise HTTPException(404, "There is no such send in this studio.")
    return job


async def send_progress(request: Request) -> Response:
    require(request, "send")
    return page(request, "progress.html", job=_job(request))


async def send_status(request: Request) -> Response:
    require(request, "send")
    html = _templates.get_template("_progress.html").render(job=_job(request))
    return HTMLResponse(html)


# ---------------------------------------------------------------- errors


async def _newsletter_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NewsletterError)
    back = f"/issues/{request.path_params['name']}" if "name" in request.path_params else "/"
    message = exc.message[:1] .upper() + exc.message[1:]
    return page(request, "message.html", status=400, heading="That did not work",
                kind="error", message=message, hint=exc.hint or "", back=back,
                back_label="Back" if back != "/" else None)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.headers.get("hx-request"):
        return PlainTextResponse(exc.detail, status_code=exc.status_code)
    return page(request, "message.html", status=exc.status_code, heading="That did not work",
                kind="error", message=exc.detail, hint="", back="/", back_label=None)


def create_app(project_root: Path, *, user: User | None = None,
               allowed_hosts: frozenset[str] = LOOPBACK_HOSTS) -> Starlette:
    """The studio for the project at ``project_root`` (local mode unless the caller
    sets ``app.state.users`` to a function returning the request's user)."""
    routes = [
        Route("/", issues_page),
        Route("/issues", create_issue, methods=["POST"]),
        Route("/issues/{name}", editor_page),
        Route("/issues/{name}", save, methods=["POST"]),
        Route("/issues/{name}/autosave", autosave, methods=["POST"]),
        Route("/issues/{name}/links", add_links, methods=["POST"]),
        Route("/issues/{name}/image", upload_image, methods=["POST"]),
        Route("/issues/{name}/email.html", email_html),
        Route("/issues/{name}/email.txt", email_text),
        Route("/issues/{name}/test", test_send, methods=["POST"]),
        Route("/issues/{name}/send", send_page),
        Route("/issues/{name}/send", start_send, methods=["POST"]),
        Route("/issues/{name}/cancel", cancel_scheduled, methods=["POST"]),
        Route("/sends/{job}", send_progress),
        Route("/sends/{job}/status", send_status),
        Route("/media/{file}", media),
        Mount("/static", StaticFiles(directory=HERE / "static")),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(StudioGuard, allowed_hosts=allowed_hosts),
                    Middleware(RequestBodyLimitMiddleware, max_body_size=MAX_BODY_BYTES)],
        exception_handlers={NewsletterError: _newsletter_error, HTTPException: _http_error},
    )
    project = Project(project_root)
    app.state.studio = StudioState(project.root, user or local_user(
        project.config.sender.reply_to or ""))
    return app
