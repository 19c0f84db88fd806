"""Where an issue file's items sit in its text, and the style they are written in.

Both ways of editing an issue file in place (:mod:`newsletter.issue_append` adding
items, :mod:`newsletter.issue_writer` the studio's Save) cut the text at item
boundaries and write new items to match the old. These helpers find those
boundaries from ruamel's nodes and read the file's style: indentation, blank lines
between items, how wide its ``|`` summaries are wrapped, its line endings.
"""

from __future__ import annotations

from dataclasses import dataclass

from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode


@dataclass(frozen=True)
class Style:
    """How a file writes its items (the defaults serve a file with none to copy)."""

    dash_col: int = 2  # column of "-" before each item
    key_indent: int = 2  # from "-" to the item's keys
    block_indent: int = 2  # from a key to the lines of its | text
    blank_line: bool = True  # a blank line between items
    width: int = 92  # longest line of | text, indentation included
    newline: str = "\n"


def line_start(text: str, index: int) -> int:
    """Index of the start of the line that holds ``index``."""
    return text.rfind("\n", 0, index) + 1


def line_end(text: str, index: int) -> int:
    """Index just past the newline ending the line that holds ``index``."""
    end = text.find("\n", index)
    return len(text) if end < 0 else end + 1


def content_end(text: str, index: int, dash_col: int) -> int:
    """Where an item's text really ends, given the end of its node.

    A `|` or `>` text's node ends where the next field starts, after blank lines
    and comments. Comments indented deeper than the item's "-" stay with the
    item; those at its "-" or further left belong to what follows.
    """
    pos = index
    while pos > 0:
        start = line_start(text, pos - 1)
        line = text[start:pos]
        stripped = line.strip()
        indent = len(line) - len(line.lstrip(" "))
        if stripped and not (stripped.startswith("#") and indent <= dash_col):
            return start + len(line.rstrip())
        pos = start
    return pos


def items_style(text: str, items: SequenceNode, newline: str) -> Style:
    """The style of the (non-empty, block) items list ``items`` of ``text``."""
    first = items.value[0]
    line = text[line_start(text, first.start_mark.index) : first.start_mark.index]
    dash_col = line.find("-") if "-" in line else max(first.start_mark.column - 2, 0)
    key_indent = max(first.start_mark.column - dash_col, 1)
    blank_line = True
    if len(items.value) > 1:
        # Is there an empty line between the first item's end and the second's dash?
        end = content_end(text, first.end_mark.index, dash_col)
        gap = text[line_end(text, end) :
                   line_start(text, items.value[1].start_mark.index)]
        blank_line = any(not line.strip() for line in gap.splitlines())
    # The | summaries show the indentation and the line length the editor wraps to.
    indents: list[int] = []
    lengths: list[int] = []
    for item in items.value:
        for key, value in item.value if isinstance(item, MappingNode) else []:
            if key.value == "summary" and isinstance(value, ScalarNode) and value.style == "|":
                body = text[line_end(text, value.start_mark.index) : value.end_mark.index]
                lines = [ln for ln in body.splitlines() if ln.strip()]
                if lines:
                    indent = len(lines[0]) - len(lines[0].lstrip(" "))
                    indents.append(indent - key.start_mark.column)
                    lengths.append(max(len(ln) for ln in lines))
    block_indent = max(indents[0], 1) if indents else 2
    width = max(60, min(120, max(lengths))) if lengths else 92
    return Style(dash_col, key_indent, block_indent, blank_line, width, newline)

