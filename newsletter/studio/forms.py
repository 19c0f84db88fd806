"""The editor's form: field names, form data into an :class:`IssueEdit`, and diagnostics
placed beside the field they concern."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData

from ..issue import Diagnostic
from ..issue_writer import ITEM_ORDER, TOP_FIELDS, IssueEdit, ItemEdit

# What people see next to each field (the issue format's names are in brackets in docs).
LABELS = {
    "subject": "Subject", "preheader": "Preheader", "intro": "Intro", "title": "Title",
    "url": "Link", "summary": "Summary", "source": "Source", "published": "Published",
    "photo_credit": "Photo credit", "image": "Image", "image_alt": "Image description",
    "section": "Section",
}
GENERAL = "general"
_ITEM_FIELD = re.compile(r"^items\[(\d+)\]\.(\w+)$")


def field_name(index: int, name: str) -> str:
    """The form name of field ``name`` of the item at ``index`` (0-based)."""
    return f"items-{index}-{name}"


def slot_id(field: str) -> str:
    """The id of the element holding the diagnostics of a Diagnostic.field.

    'items[3].url' -> 'd-items-2-url'; 'subject' -> 'd-subject'; anything not
    shown as a field of the form -> 'd-general'.
    """
    match = _ITEM_FIELD.match(field)
    if match and match.group(2) in ITEM_ORDER:
        return f"d-{field_name(int(match.group(1)) - 1, match.group(2))}"
    if field in TOP_FIELDS:
        return f"d-{field}"
    return f"d-{GENERAL}"


@dataclass(frozen=True)
class Action:
    """What a native submit asked for besides saving: add, remove, up, down, overwrite."""

    verb: str
    index: int = -1


def read_action(form: FormData) -> Action:
    """The button pressed: 'save', 'add', 'remove:2', 'up:2', 'down:2' or 'overwrite'."""
    raw = str(form.get("action") or "save")
    verb, _, index = raw.partition(":")
    if verb in ("remove", "up", "down") and index.isdigit():
        return Action(verb, int(index))
    return Action(verb if verb in ("save", "add", "overwrite") else "save")


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    # Browsers send textarea line breaks as CRLF; the file keeps its own.
    return value.replace("\r\n", "\n").replace("\r", "\n") if isinstance(value, str) else ""


def read_edit(form: FormData, action: Action | None = None) -> IssueEdit:
    """The issue as the form has it, with ``action`` (add, remove, move) applied."""
    edit = IssueEdit({name: _text(form, name).strip() for name in TOP_FIELDS if name in form})
    for raw in form.getlist("item"):
        if not isinstance(raw, str) or not raw.isdigit():
            continue
        index = int(raw)
        fields = {name: _text(form, field_name(index, name)).strip() for name in ITEM_ORDER
                  if field_name(index, name) in form}
        edit.items.append(ItemEdit(index, fields))
    if action is None:
        return edit
    items = edit.items
    position = next((p for p, item in enumerate(items) if item.original == action.index), -1)
    if action.verb == "add":
        items.append(ItemEdit(None, {"title": "", "url": "", "summary": ""}))
    elif action.verb == "remove" and position >= 0:
        del items[position]
    elif action.verb == "up" and position > 0:
        items[position - 1], items[position] = items[position], items[position - 1]
    elif action.verb == "down" and 0 <= position < len(items) - 1:
        items[position + 1], items[position] = items[position], items[position + 1]
    return edit


def place(diagnostics: list[Diagnostic]) -> dict[str, list[Diagnostic]]:
    """Diagnostics grouped by the id of the slot beside their field."""
    placed: dict[str, list[Diagnostic]] = {}
    for diagnostic in diagnostics:
        placed.setdefault(slot_id(diagnostic.field), []).append(diagnostic)
    return placed


def item_values(item: Any) -> dict[str, str]:
    """An item of the file (a dict, or anything else) as the form's text values."""
    if not isinstance(item, dict):
        return {name: "" for name in ITEM_ORDER}
    return {name: "" if item.get(name) is None else str(item.get(name)).rstrip("\n")
            for name in ITEM_ORDER}
