"""New items written as YAML in an issue file's own style and spliced into its text.

The new items are written as YAML text in the file's own style (indentation,
blank lines between items, ``|`` summaries wrapped like the others) and spliced in
after the last item (or where asked). Every other byte of the file stays the same:
comments, order, quoting and line endings. The result is parsed again to prove that;
the caller writes it (atomically), so the file is only ever replaced whole.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.scalarstring import LiteralScalarString

from .errors import NewsletterError
from .issue import plain_data
from .issue_layout import Style, content_end, items_style, line_end, line_start

# Order of fields in a new item, as in the issue files `newsletter new` writes.
FIELD_ORDER = ("title", "url", "source", "published", "image", "image_alt", "section", "summary")


@dataclass(frozen=True)
class _Place:
    index: int  # where to insert the new items' text
    prefix: str  # text to insert first ("items:" when the file has none)
    style: Style
    first: bool = False  # no items yet: no blank line before the first new one
    before: bool = False  # inserted before the first item: blank line after, not before


def _find_place(text: str, after: int | None = None) -> _Place:
    """Where new items go: after item number ``after`` (default: the last; 0: before the
    first), or in a new items list at the end."""
    newline = "\r\n" if "\r\n" in text else "\n"
    root = YAML(typ="rt").compose(text)
    if not isinstance(root, MappingNode):
        raise NewsletterError("the issue file does not start with fields such as 'date:'",
                              hint="Compare it with the example in docs/issue-format.md.")
    for key, value in root.value:
        if key.value != "items":
            continue
        if isinstance(value, SequenceNode) and value.value and not value.flow_style:
            style = items_style(text, value, newline)
            count = len(value.value) if after is None else min(after, len(value.value))
            if count == 0:
                return _Place(line_start(text, value.value[0].start_mark.index), "", style,
                              before=True)
            end = content_end(text, value.value[count - 1].end_mark.index, style.dash_col)
            return _Place(line_end(text, end), "", style)
        if isinstance(value, ScalarNode) and (value.tag or "").endswith(":null"):
            return _Place(line_end(text, key.end_mark.index), "", Style(newline=newline), True)
        line = key.start_mark.line + 1
        raise NewsletterError(
            f"line {line}: 'items' is written in a way `newsletter add` cannot add to; "
            "expected a list with each item starting '- title:' on its own line",
            hint="Write the items as in docs/issue-format.md, then run `newsletter add` again.",
        )
    tail = "" if not text or text.endswith("\n") else newline
    return _Place(len(text), f"{tail}{newline}items:{newline}", Style(newline=newline), True)


_MARKDOWN_START = re.compile(r"^([-+*>#]+|\d+[.)])$")


def _wrap(text: str, width: int) -> str:
    """Wrap each paragraph to ``width``; never start a line with a Markdown list or heading."""
    paragraphs = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        lines: list[str] = []
        for word in paragraph.split():
            if lines and (len(lines[-1]) + 1 + len(word) <= width or _MARKDOWN_START.match(word)):
                lines[-1] += f" {word}"
            else:
                lines.append(word)
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs) + "\n"


def _entry(fields: dict[str, Any], style: Style) -> CommentedMap:
    """One item as YAML data: fields in the usual order, the summary as wrapped | text."""
    text_width = style.width - style.dash_col - style.key_indent - style.block_indent
    entry = CommentedMap()
    for name in FIELD_ORDER:
        if name in fields:
            value = fields[name]
            if name == "summary":
                value = LiteralScalarString(_wrap(value, max(text_width, 40)))
            entry[name] = value
    return entry


def render_items(items: Iterable[dict[str, Any]], style: Style | None = None,
                 *, before: bool = False) -> str:
    """The YAML text of ``items`` as list entries, indented to sit in an issue file.

    Each entry is preceded by the file's blank line between items, or, ``before``
    the first existing item, followed by it.
    """
    style = style or Style()
    yaml = YAML(typ="rt")
    yaml.width = 10**6  # the | text is wrapped by _wrap; other fields stay on one line
    yaml.indent(mapping=style.block_indent, sequence=style.key_indent, offset=0)
    pad = " " * style.dash_col
    separator = "\n" if style.blank_line else ""
    chunks = []
    for fields in items:
        out = io.StringIO()
        yaml.dump([_entry(fields, style)], out)
        lines = out.getvalue().splitlines(keepends=True)
        body = "".join(f"{pad}{ln}" if ln.strip() else ln for ln in lines)
        chunks.append(body + separator if before else separator + body)
    return "".join(chunks).replace("\n", style.newline)


def append_items(text: str, items: list[dict[str, Any]],
                 after: int | None = None) -> tuple[str, str]:
    """``text`` with ``items`` added to its items list, and the added text.

    The new items go after the existing item number ``after`` (default: at the
    end; 0: before the first). Raises NewsletterError if the result would read
    back differently from the original plus the new items (the file is then
    left alone).
    """
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    body = text.removeprefix(bom)
    place = _find_place(body, after)
    added = render_items(items, place.style, before=place.before)
    if place.first:
        added = place.prefix + added.lstrip("\r\n")
    new_body = body[: place.index] + added + body[place.index :]
    _verify(body, new_body, [_entry(fields, place.style) for fields in items], after)
    return bom + new_body, added


def _verify(old: str, new: str, items: list[dict[str, Any]], at: int | None) -> None:
    yaml = YAML(typ="rt")
    before, after = plain_data(yaml.load(old)), plain_data(yaml.load(new))
    expected = dict(before)
    existing = list(before.get("items") or [])
    cut = len(existing) if at is None else at
    expected["items"] = existing[:cut] + [plain_data(i) for i in items] + existing[cut:]
    if after != expected:
        raise NewsletterError(
            "could not add the items without changing the rest of the issue file "
            "(its last item may be written in an unusual way); nothing was changed",
            hint="Run with --dry-run and paste the printed items into the file by hand.",
        )

