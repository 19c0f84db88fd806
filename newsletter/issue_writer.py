"""Changing fields of an issue file in place, leaving every untouched byte as it was.

A form (the studio) sends the whole issue as plain fields. :func:`update_issue_text`
works out what changed and edits only those spans of the text: a changed value is
rewritten where it stands, a new field gets a line of its own after its neighbour,
a cleared optional field loses its lines, and items are removed, reordered or added
as whole blocks of lines. Comments, quoting, blank lines and line endings elsewhere
stay byte for byte. The result is parsed again and compared with what was asked
for; if they differ nothing is written (:class:`~newsletter.errors.NewsletterError`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML

from .errors import NewsletterError
from .files import atomic_write
from .issue import plain_data
from .issue_layout import content_end, items_style, line_end, line_start

# The order fields are written in; a new field goes after the nearest one before it.
TOP_ORDER = ("date", "number", "subject", "preheader", "intro", "items", "draft")
ITEM_ORDER = ("title", "url", "source", "published", "photo_credit", "image", "image_alt",
              "section", "summary")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Fields that may hold several lines (written as | blocks).
MULTILINE = frozenset({"intro", "summary"})
# Required fields are written as '' when emptied (check then says what is missing);
# optional ones are removed.
REQUIRED = frozenset({"subject", "title", "url", "summary"})
TOP_FIELDS = ("subject", "preheader", "intro")


@dataclass
class ItemEdit:
    """One item as the form has it: ``original`` is its index in the file, None if new."""

    original: int | None
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class IssueEdit:
    """The editable parts of an issue as a form has them (strings; '' means empty)."""

    fields: dict[str, str] = field(default_factory=dict)  # subject, preheader, intro
    items: list[ItemEdit] = field(default_factory=list)


def text_hash(text: str | bytes) -> str:
    """A short fingerprint of a file's content, to tell whether it changed since loaded."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()[:32]


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    text: str


# --- writing one value -------------------------------------------------------------------


def _plain_ok(value: str) -> bool:
    """True if ``value`` reads back as the same string when written without quotes."""
    if not value or value != value.strip() or "\n" in value:
        return False
    try:
        return yaml.load(f"k: {value}\n", Loader=_LOADER) == {"k": value}  # noqa: S506
    except Exception:  # noqa: BLE001 - e.g. ValueError for 2021-13-01: then quote it
        return False


def _scalar(name: str, value: str, indent: int, newline: str) -> str:
    """``value`` written as YAML for a key at column ``indent`` (without the key)."""
    if name == "published" and value:
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            pass  # written as text: check explains what a date looks like
    if name in MULTILINE and "\n" in value.strip():
        lines = value.strip("\n").split("\n")
        if all(line == line.rstrip() for line in lines) and not lines[0].startswith(" "):
            pad = " " * (indent + 2)
            body = newline.join(f"{pad}{line}" if line else "" for line in lines)
            return f"|{newline}{body}{newline}"
    if _plain_ok(value):
        return value
    return json.dumps(value, ensure_ascii=False)


def _same(old: Any, new: str) -> bool:
    if old is None:
        return new == ""
    if isinstance(old, dt.date):
        return old.isoformat() == new.strip()
    return str(old).strip() == new.strip()


class _Writer:
    """Edits of one mapping (the issue's top level, or one item)."""

    def __init__(self, text: str, mapping: Any, order: tuple[str, ...],
                 newline: str) -> None:
        self.text, self.mapping, self.order, self.newline = text, mapping, order, newline
        self.keys = {key.value: (key, value) for key, value in mapping.value}
        first_key = mapping.value[0][0] if mapping.value else None
        self.column = first_key.start_mark.column if first_key is not None else 0

    def _value_span(self, key: Any, value: Any) -> tuple[int, int]:
        """Where the value's text is; (p, p) just after the colon for an empty value."""
        start = value.start_mark.index
        if _is(value, "scalar") and value.style in ("|", ">"):
            return start, line_end(self.text, content_end(self.text, value.end_mark.index,
                                                          self.column))
        if _is(value, "scalar") and not value.value and (value.tag or "").endswith("null"):
            colon = self.text.index(":", key.end_mark.index) + 1
            return colon, colon
        return start, value.end_mark.index

    def edit(self, name: str, new: str, old: Any) -> list[_Edit]:
        """The text edits that make field ``name`` hold ``new``."""
        if _same(old, new) and (name in self.keys or new == ""):
            return []
        if name in self.keys:
            key, value = self.keys[name]
            start, end = self._value_span(key, value)
            if new == "" and name not in REQUIRED and key is not self.mapping.value[0][0]:
                first = line_start(self.text, key.start_mark.index)
                return [_Edit(first, line_end(self.text, max(end - 1, start)), "")]
            written = _scalar(name, new, self.column, self.newline)
            old_block = end > start and self.text[end - 1] == "\n"
            if written.endswith("\n") and not old_block:
                end = line_end(self.text, end)  # a block ends its line; drop what followed
            elif old_block and not written.endswith("\n"):
                written += self.newline
            space = "" if self.text[start - 1] == " " else " "
            return [_Edit(start, end, space + written)]
        # A new field: on its own line after the nearest field before it in the usual order.
        line = f"{' ' * self.column}{name}: {_scalar(name, new, self.column, self.newline)}"
        if not line.endswith("\n"):
            line += self.newline
        before = [n for n in self.order[: self.order.index(name)] if n in self.keys]
        anchor_name = before[-1] if before else self.mapping.value[0][0].value
        key, value = self.keys[anchor_name]
        end = self._value_span(key, value)[1]
        at = line_end(self.text, max(end - 1, key.end_mark.index))
        return [_Edit(at, at, line)]


# --- the whole issue ---------------------------------------------------------------------


def _apply(text: str, edits: list[_Edit]) -> str:
    for edit in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        text = text[: edit.start] + edit.text + text[edit.end :]
    return text


def _is(node: Any, kind: str) -> bool:
    """True if ``node`` (of libyaml's or ruamel's composer) is a scalar, mapping or sequence."""
    return getattr(node, "id", None) == kind


def _items_node(root: Any) -> tuple[Any, Any] | None:
    return next(((k, v) for k, v in root.value if k.value == "items"), None)


def _not_an_issue() -> NewsletterError:
    return NewsletterError(
        "the issue file does not start with fields such as 'date:'; it cannot be edited "
        "in a form", hint="Compare it with the example in docs/issue-format.md.")


def _compose(text: str) -> Any:
    """The file's node tree, with positions (libyaml's composer: about 20 times faster)."""
    root = yaml.compose(text, Loader=_LOADER)  # noqa: S506 - a safe loader
    if not _is(root, "mapping"):
        raise _not_an_issue()
    return root


_DECIMAL = re.compile(r"[-+]?(0|[1-9][0-9]*)")


def _ambiguous(node: Any) -> bool:
    """True if a plain value reads differently in YAML 1.1 (libyaml) and 1.2 (check):
    `no`, `on`, 010, 1_000, 1:20 and the like."""
    if _is(node, "scalar"):
        if node.style:
            return False
        tag = node.tag or ""
        return (tag.endswith(":bool") and node.value.lower() not in ("true", "false")
                or tag.endswith(":int") and not _DECIMAL.fullmatch(node.value)
                or tag.endswith(":float"))
    if _is(node, "mapping"):
        return any(_ambiguous(k) or _ambiguous(v) for k, v in node.value)
    return any(_ambiguous(child) for child in node.value)


def _parse(text: str) -> tuple[Any, dict[str, Any]]:
    """The file's node tree (for positions) and its data as `newsletter check` reads it."""
    root = _compose(text)
    if not _ambiguous(root):
        return root, plain_data(yaml.load(text, Loader=_LOADER))  # noqa: S506 - safe loader
    reader = YAML(typ="rt")  # the round-trip parser decides, as in `newsletter check`
    root = reader.compose(text)
    if not _is(root, "mapping"):
        raise _not_an_issue()
    return root, plain_data(reader.constructor.construct_document(root))


def _edit_fields(text: str, root: Any, data: dict[str, Any], edit: IssueEdit,
                 newline: str) -> str:
    """Change scalar fields of the top level and of the items that stay."""
    edits = []
    top = _Writer(text, root, TOP_ORDER, newline)
    for name in TOP_FIELDS:
        if name in edit.fields:
            edits += top.edit(name, edit.fields[name], data.get(name))
    found = _items_node(root)
    nodes = found[1].value if found and _is(found[1], "sequence") else []
    old_items = data.get("items") or []
    for item in edit.items:
        if item.original is None or item.original >= len(nodes):
            continue
        node = nodes[item.original]
        if not _is(node, "mapping") or not node.value:
            continue
        writer = _Writer(text, node, ITEM_ORDER, newline)
        old = old_items[item.original] if isinstance(old_items[item.original], dict) else {}
        for name in ITEM_ORDER:
            if name in item.fields:
                edits += writer.edit(name, item.fields[name], old.get(name))
    return _apply(text, edits)


def _render_item(fields: dict[str, str], dash: int, key_indent: int, newline: str) -> str:
    """A new item's lines: '- title: ...' then its other fields under it."""
    column = dash + key_indent
    lines = []
    for number, (name, value) in enumerate(fields.items()):
        lead = " " * dash + "-" + " " * (key_indent - 1) if number == 0 else " " * column
        written = _scalar(name, value, column, newline)
        lines.append(f"{lead}{name}: {written}" + ("" if written.endswith("\n") else newline))
    return "".join(lines)


def _arrange_items(text: str, edit: IssueEdit, newline: str, count: int) -> str:
    """Remove, reorder and add whole items (``count``: how many the file has)."""
    kept = [i.original for i in edit.items if i.original is not None and i.original < count]
    if kept == list(range(count)) and all(i.original is not None for i in edit.items):
        return text
    root = _compose(text)
    found = _items_node(root)
    nodes = list(found[1].value) if found and _is(found[1], "sequence") else []
    if nodes:
        style = items_style(text, found[1], newline)  # type: ignore[index]
        dash, key_indent, blank = style.dash_col, style.key_indent, style.blank_line
        region_start = line_start(text, nodes[0].start_mark.index)
    else:  # `items:` with nothing under it, or no items key at all
        dash, key_indent, blank = 2, 2, True
        if found is None:
            text = text + ("" if not text or text.endswith("\n") else newline) + "items:" + newline
            found = _items_node(_compose(text))
            assert found is not None
        region_start = line_end(text, found[0].end_mark.index)
    # Each item: (its leading gap of blank lines and comments, its own lines).
    bodies: list[tuple[str, str]] = []
    previous = region_start
    for node in nodes:
        start = line_start(text, node.start_mark.index)
        end = line_end(text, content_end(text, node.end_mark.index, dash))
        bodies.append((text[previous:start], text[start:end]))
        previous = end
    separator = newline if blank else ""
    parts: list[str] = []
    for item in edit.items:
        if item.original is not None and item.original < len(nodes):
            gap, body = bodies[item.original]
            gap = gap or separator
        else:
            gap, body = separator, _render_item(_new_fields(item), dash, key_indent, newline)
        parts.append(gap + body)
    if parts:
        parts[0] = parts[0].lstrip("\r\n")
    return text[:region_start] + "".join(parts) + text[previous:]


def _new_fields(item: ItemEdit) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name in ITEM_ORDER:
        value = item.fields.get(name, "").strip()
        if value or name in REQUIRED:
            fields[name] = value
    return fields


def _normal(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _normal(v) for k, v in node.items() if v not in (None, "")}
    if isinstance(node, list):
        return [_normal(v) for v in node]
    if isinstance(node, dt.date):
        return node.isoformat()
    if isinstance(node, str):
        return node.strip()
    return node


def _expected(before: dict[str, Any], edit: IssueEdit) -> dict[str, Any]:
    expected = dict(before)
    for name, value in edit.fields.items():
        expected[name] = value
    old_items = before.get("items") or []
    items = []
    for item in edit.items:
        if item.original is not None and item.original < len(old_items):
            merged = dict(old_items[item.original])
            merged.update(item.fields)
        else:
            merged = _new_fields(item)
        items.append(merged)
    expected["items"] = items or None
    return _normal(expected)


def update_issue_text(text: str, edit: IssueEdit) -> str:
    """``text`` with the changes of ``edit`` made in place (see the module's description).

    Raises NewsletterError if the file cannot be read as YAML or if the result would
    not read back as asked (then nothing should be written).
    """
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    body = text.removeprefix(bom)
    newline = "\r\n" if "\r\n" in body else "\n"
    try:
        root, before = _parse(body)
        expected = _expected(before, edit)
        if _normal(before) == expected:
            return text  # nothing changed: not a byte written
        old_items = before.get("items")
        count = len(old_items) if isinstance(old_items, list) else 0
        new_body = _arrange_items(_edit_fields(body, root, before, edit, newline), edit,
                                  newline, count)
        same = _reads_as(new_body, expected)
    except NewsletterError:
        raise
    except Exception as exc:  # ruamel raises many kinds; all mean "not editable here"
        raise NewsletterError(
            f"the issue file could not be changed: {exc}",
            hint="Run `newsletter check` on it, fix what it says, then try again.",
        ) from None
    if not same:
        raise NewsletterError(
            "the change could not be written without changing other parts of the issue "
            "file, so nothing was written",
            hint="Make this change in a text editor, then run `newsletter check`.",
        )
    return bom + new_body


def _reads_as(text: str, expected: dict[str, Any]) -> bool:
    """True if ``text`` reads back as ``expected``: libyaml first (fast), else the
    round-trip parser, which decides where YAML 1.1 and 1.2 differ (`no`, 010)."""
    try:
        if _normal(yaml.load(text, Loader=_LOADER)) == expected:  # noqa: S506 - safe loader
            return True
    except yaml.YAMLError:
        pass
    return bool(_normal(plain_data(YAML(typ="rt").load(text))) == expected)


def update_issue_file(path: Path, edit: IssueEdit, expected_hash: str | None = None) -> str:
    """Apply ``edit`` to the file at ``path`` and return the new content's hash.

    With ``expected_hash``, raise :class:`FileChanged` instead if the file on disk
    is no longer the one that hash was taken from.
    """
    data = path.read_bytes()
    if expected_hash is not None and text_hash(data) != expected_hash:
        raise FileChanged(path, data.decode("utf-8", errors="replace"))
    new_text = update_issue_text(data.decode("utf-8"), edit)
    if new_text.encode("utf-8") != data:
        atomic_write(path, new_text)
    return text_hash(new_text)


class FileChanged(NewsletterError):
    """The issue file changed on disk since it was loaded; ``text`` is what is there now."""

    def __init__(self, path: Path, text: str) -> None:
        super().__init__(
            f"{path.name} changed on disk since it was opened here (in a text editor, "
            "another tab or a git pull); nothing was overwritten",
            hint="Choose which version to keep.",
        )
        self.path = path
        self.text = text


def set_item_field(path: Path, index: int, name: str, value: str) -> str:
    """Set field ``name`` of the item at ``index`` (0-based) in the file as it is now.

    A targeted change (e.g. the address of an uploaded picture): it overwrites nothing
    else, so it needs no fingerprint. Returns the new content's hash.
    """
    data = plain_data(YAML(typ="rt").load(path.read_text(encoding="utf-8")))
    items = data.get("items") if isinstance(data, dict) else None
    count = len(items) if isinstance(items, list) else 0
    if not 0 <= index < count:
        raise NewsletterError(f"the issue has no item {index + 1}",
                              hint="Reload the page: the file may have changed.")
    edit = IssueEdit({}, [ItemEdit(i, {name: value} if i == index else {}) for i in range(count)])
    return update_issue_file(path, edit)
