"""The editor's work: load an issue for the form, save the form, check and render.

Saving goes through :mod:`newsletter.issue_writer` (the file stays the source of truth,
edited in place); checking through :func:`newsletter.pipeline.check_and_render`, the
same function as `newsletter check`.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException

from ..errors import NewsletterError
from ..issue import Diagnostic, Issue, parse_issue_text, read_issue_text
from ..issue_writer import FileChanged, IssueEdit, text_hash, update_issue_file, update_issue_text
from ..pipeline import check_and_render
from ..project import Project
from ..render import RenderedEmail
from .forms import Action, item_values, place, read_action, read_edit

_NAME = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_.-]{0,80}$")


def issue_path(project: Project, name: str) -> Path:
    """The file of issue ``name`` (its file name without .yaml); 404 if there is none."""
    if _NAME.match(name) and ".." not in name:
        for path in project.issue_files():
            if path.stem == name:
                return path
    raise HTTPException(404, f"There is no issue called {name!r}. Go back to the list of issues.")


@dataclass
class Checked:
    """An issue file as it is on disk now: its text, fingerprint, diagnostics and email."""

    path: Path
    text: str
    hash: str
    diagnostics: list[Diagnostic]
    rendered: RenderedEmail | None
    issue: Issue | None = None  # the parsed issue, with ``rendered`` (preflight reuses both)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


class RenderCache:
    """The last check of each issue file, by content hash: the preview reuses the save's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[Path, Checked] = {}

    def check(self, project: Project, path: Path) -> Checked:
        """The file checked and rendered (for sending), once per content."""
        data = path.read_bytes()
        digest = text_hash(data)
        with self._lock:
            found = self._last.get(path)
        if found is not None and found.hash == digest:
            return found
        result, rendered = check_and_render(project, path)
        checked = Checked(path, data.decode("utf-8", errors="replace"), digest,
                          result.diagnostics, rendered, result.issue)
        with self._lock:
            self._last[path] = checked
        return checked


@dataclass
class EditorView:
    """What the editor page shows."""

    name: str
    checked: Checked
    fields: dict[str, str]
    items: list[dict[str, str]]
    sections: list[str]
    placed: dict[str, list[Diagnostic]] = field(default_factory=dict)
    readable: bool = True  # False when the file is not YAML the form can show


def editor_view(project: Project, path: Path, cache: RenderCache) -> EditorView:
    """The form's values, the diagnostics in their places, and the sections in use."""
    checked = cache.check(project, path)
    text, _ = read_issue_text(path)
    _, _, data = parse_issue_text(text or "", path)
    readable = isinstance(data, dict)
    data = data if isinstance(data, dict) else {}
    raw_items = data.get("items") if isinstance(data.get("items"), list) else []
    items = [item_values(item) for item in raw_items or []]
    sections = sorted({item["section"] for item in items if item["section"]})
    fields = {name: "" if data.get(name) is None else str(data.get(name)).rstrip("\n")
              for name in ("subject", "preheader", "intro")}
    return EditorView(path.stem, checked, fields, items, sections,
                      place(checked.diagnostics), readable)


@dataclass
class Conflict:
    """The file changed on disk since the form was loaded: both versions, for a choice."""

    disk_text: str
    disk_hash: str
    mine: str  # the form's values written over the file on disk, or '' if impossible


def save_form(path: Path, form: FormData, action: Action | None = None,
              own_hash: str | None = None) -> str | Conflict:
    """Save the form to the file; the new content hash, or a Conflict (nothing written).

    The form carries ``base_hash``, the fingerprint of the file it was loaded from;
    "overwrite" carries ``disk_hash`` instead, the version the user chose to replace.
    ``own_hash`` is what this same editor last wrote (its own autosave may have
    overtaken the form): finding that on disk is not a conflict.
    """
    action = action or read_action(form)
    edit: IssueEdit = read_edit(form, action)
    expected = str(form.get("disk_hash" if action.verb == "overwrite" else "base_hash") or "")
    if own_hash and text_hash(path.read_bytes()) == own_hash:
        expected = own_hash
    try:
        return update_issue_file(path, edit, expected)
    except FileChanged as changed:
        try:
            mine = update_issue_text(changed.text, edit)
        except NewsletterError:
            mine = ""
        return Conflict(changed.text, text_hash(changed.text.encode("utf-8")), mine)


def form_values(form: FormData) -> dict[str, Any]:
    """The raw form, for showing a conflict without losing what was typed."""
    return {key: value for key, value in form.multi_items() if isinstance(value, str)}
