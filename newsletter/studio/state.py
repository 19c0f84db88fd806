"""What every studio page shares: the running studio's state, rendering, redirects, audit.

Under ``newsletter serve`` the studio is mounted under /studio: every link and redirect
starts with :func:`root` (the mount's path, empty when the studio runs on its own).
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from ..project import Project
from ..store import Database, open_project_database, record_action
from .editor import RenderCache
from .preflight_panel import SlowResults
from .security import User, current_user, new_csrf_secret, page_csrf_token, viewer
from .sends import SendJobs

HERE = Path(__file__).parent
SAVE_AUDIT_SECONDS = 600  # autosaves of one issue by one person: one audit entry per 10 min


@dataclass(frozen=True)
class Note:
    """A message shown once at the top of the next page."""

    kind: str
    lines: list[str]


@dataclass(frozen=True)
class Hosted:
    """A studio for a team: logins kept in ``database``, cookies signed with ``secret``."""

    database: Database
    secret: bytes
    session_seconds: int = 12 * 3600
    review_seconds: int = 7 * 86400
    login_window: int = 15 * 60
    login_per_account: int = 10
    login_per_address: int = 50


@dataclass
class StudioState:
    """What one running studio keeps: the project, its user, caches, notes and sends."""

    project_root: Path
    user: User
    hosted: Hosted | None = None
    csrf_secret: bytes = field(default_factory=new_csrf_secret)
    review_secret: bytes = field(default_factory=new_csrf_secret)
    cache: RenderCache = field(default_factory=RenderCache)
    preflights: SlowResults = field(default_factory=SlowResults)  # full runs, by content
    jobs: SendJobs = field(default_factory=SendJobs)
    notes: dict[str, Note] = field(default_factory=dict)
    # The hash each open editor last wrote: its own autosave is not someone else's change.
    written: dict[str, str] = field(default_factory=dict)
    # Uploaded import files waiting for the admin's "Import": id -> (user, path, list, resub).
    imports: dict[str, tuple[str, Path, str, bool]] = field(default_factory=dict)
    saves_audited: dict[tuple[str, str], float] = field(default_factory=dict)
    # Reports just built (see ``reports``): key -> (monotonic time, (report, its HTML)).
    reports: dict[tuple[str, ...], tuple[float, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    _project: tuple[tuple[int, int], Project] | None = None
    _database: Database | None = None

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

    @property
    def database(self) -> Database:
        """The subscriber database (opened on first use in local mode)."""
        if self.hosted is not None:
            return self.hosted.database
        with self.lock:
            if self._database is None:
                self._database = open_project_database(self.project)
            return self._database

    def note(self, kind: str, lines: list[str]) -> str:
        key = secrets.token_urlsafe(8)
        with self.lock:
            if len(self.notes) > 200:
                self.notes.clear()
            self.notes[key] = Note(kind, lines)
        return key


templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
    undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
)


def state(request: Request) -> StudioState:
    """The running studio's state."""
    studio: StudioState = request.app.state.studio
    return studio


def root(request: Request) -> str:
    """The path the studio is mounted at ("" on its own, "/studio" under serve)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def render(request: Request, template: str, **context: Any) -> str:
    """A template (or fragment) with the studio's root path and the viewer."""
    context.setdefault("user", viewer(request))
    return templates.get_template(template).render(root=root(request), **context)


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with what every page needs (user, CSRF token, newsletter name)."""
    studio = state(request)
    note = studio.notes.pop(request.query_params.get("note", ""), None)
    context.setdefault("note", note)
    html = render(request, template, csrf=page_csrf_token(request),
                  newsletter_name=studio.project.config.name,
                  hosted=studio.hosted is not None, **context)
    return HTMLResponse(html, status_code=status)


def redirect(request: Request, url: str) -> RedirectResponse:
    """A 303 to ``url`` (a path inside the studio)."""
    return RedirectResponse(root(request) + url, status_code=303)


def audit(request: Request, action: str, target: str = "", detail: str = "") -> None:
    """Record what the current user did, in hosted mode (blocking: call in a thread)."""
    studio = state(request)
    if studio.hosted is None:
        return
    actor = current_user(request).email
    if action == "saved":
        now = time.monotonic()
        with studio.lock:
            last = studio.saves_audited.get((actor, target))
            if last is not None and now - last < SAVE_AUDIT_SECONDS:
                return
            studio.saves_audited[(actor, target)] = now
    with studio.database.transaction() as session:
        record_action(session, actor, action, target, detail)


def when(moment: dt.datetime | None) -> str:
    """A stored UTC time as the page shows it."""
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else ""


templates.filters["when"] = when
