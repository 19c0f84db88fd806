"""Reading issue YAML: plain data with positions, limits, and YAML errors in plain words.

Both ways of reading a file (libyaml, fast; ruamel, whose errors are placed and
explained) turn the parser's events into data with the same :func:`build`, so they
cannot disagree on what a file says. Scalars stay text exactly as written (``08``
is the text "08"); the issue model decides what a field's text means (a date, a
whole number). Anchors, aliases and tags are refused: an issue never needs them,
and aliases let a small file expand into gigabytes ("billion laughs").
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from ruamel.yaml.error import MarkedYAMLError

MAX_BYTES = 1_000_000
MAX_DEPTH = 20
# A plain (unquoted) scalar written like this is "nothing", as in every YAML version.
NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_STR_TAG = "tag:yaml.org,2002:str"
_COLLECTION_TAGS = {None, "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
_KEY_LINE = re.compile(r"\s*(?:-\s+)?(['\"]?)([^\s:'\"#][^:'\"]*?)\1\s*:(?:\s|$)")

Loc = tuple[str | int, ...]


class YamlProblem(Exception):
    """The text is not an issue-shaped YAML document; the message says why in plain words."""

    def __init__(self, line: int, col: int, message: str, field: str = "(yaml)") -> None:
        super().__init__(message)
        self.line, self.col, self.message, self.field = line, col, message, field


@dataclass
class Positions:
    """1-based (line, col) of each value and each field name, by where it is in the data."""

    values: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    # Fields left empty because their text starts with '#' (a comment in YAML).
    commented: dict[Loc, str] = field(default_factory=dict)

    def of(self, loc: Loc, key_only: bool = False) -> tuple[int, int]:
        """Where ``loc`` is written, or its nearest written parent; (1, 1) if none."""
        for end in range(len(loc), 0, -1):
            prefix = loc[:end]
            if key_only and prefix in self.keys:
                return self.keys[prefix]
            if prefix in self.values:
                return self.values[prefix]
        return 1, 1


def _at(event: Any) -> tuple[int, int]:
    return event.start_mark.line + 1, event.start_mark.column + 1


def _short_tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


class _Frame:
    __slots__ = ("container", "loc", "key", "key_at")

    def __init__(self, container: dict[str, Any] | list[Any], loc: Loc) -> None:
        self.container = container
        self.loc = loc
        self.key: str | None = None
        self.key_at = (1, 1)


def build(events: Iterable[Any], lines: list[str]) -> tuple[Any, Positions]:
    """Data and positions from a parser's events (PyYAML's and ruamel's look alike)."""
    positions = Positions()
    stack: list[_Frame] = []
    root: Any = None
    documents = 0

    def attach(value: Any, at: tuple[int, int], is_collection: bool) -> Loc:
        nonlocal root
        if not stack:
            root = value
            positions.values[()] = at
            return ()
        top = stack[-1]
        if isinstance(top.container, list):
            loc = (*top.loc, len(top.container))
            top.container.append(value)
            positions.values[loc] = at
            return loc
        if top.key is None:  # this is a field name
            if is_collection:
                raise YamlProblem(*at, "a field name must be a word followed by ':', "
                                  "like 'title:'; check the brackets and indentation here")
            name = "" if value is None else value
            if name in top.container:
                first = positions.keys[(*top.loc, name)][0]
                raise YamlProblem(*at, f"'{name}' is written twice (a duplicate; the first is "
                                  f"on line {first}); keep one of them", name or "(yaml)")
            top.key, top.key_at = name, at
            positions.keys[(*top.loc, name)] = at
            return top.loc
        loc = (*top.loc, top.key)
        top.container[top.key] = value
        positions.values[loc] = at if value is not None else top.key_at
        comment = _comment(lines, top.key_at, top.key) if value is None else None
        if comment:
            positions.commented[loc] = comment
        top.key = None
        return loc

    for event in events:
        kind = type(event).__name__
        if kind in ("StreamStartEvent", "StreamEndEvent", "DocumentEndEvent"):
            continue
        at = _at(event)
        if kind == "DocumentStartEvent":
            documents += 1
            if documents > 1:
                raise YamlProblem(*at, "a line '---' starts a second document; an issue file "
                                  "holds one issue: remove the '---' and what follows it")
            continue
        if kind == "AliasEvent" or getattr(event, "anchor", None):
            pending = stack[-1].key if stack and isinstance(stack[-1].container, dict) else None
            raise YamlProblem(*at, "'&' and '*' (YAML anchors and aliases) are not allowed in "
                              "an issue file; write the text out in full, or put it in quotes "
                              "if it starts with '&' or '*'", pending or "(yaml)")
        if kind in ("MappingStartEvent", "SequenceStartEvent"):
            if event.tag not in _COLLECTION_TAGS:
                raise YamlProblem(*at, f"the tag {_short_tag(event.tag)} is not allowed in an "
                                  "issue file; remove it")
            if len(stack) >= MAX_DEPTH:
                raise YamlProblem(*at, f"is nested more than {MAX_DEPTH} levels deep; an issue "
                                  "needs at most 4. Check the indentation and the brackets")
            container: dict[str, Any] | list[Any] = {} if kind == "MappingStartEvent" else []
            stack.append(_Frame(container, attach(container, at, True)))
        elif kind in ("MappingEndEvent", "SequenceEndEvent"):
            stack.pop()
        else:  # ScalarEvent
            attach(_scalar(event, at), at, False)
    return root, positions


def _scalar(event: Any, at: tuple[int, int]) -> str | None:
    tag = event.tag
    if tag is not None and tag not in (_STR_TAG, "!"):
        raise YamlProblem(*at, f"the tag {_short_tag(tag)} is not allowed in an issue file; "
                          "remove it and write the value alone")
    if not event.style and tag is None and event.value in NULLS:
        return None
    return str(event.value)


def _comment(lines: list[str], key_at: tuple[int, int], key: str) -> str | None:
    """The text after ``key:`` on its line when it starts with '#' (so YAML ignored it)."""
    line = lines[key_at[0] - 1] if key_at[0] <= len(lines) else ""
    rest = line[key_at[1] - 1 + len(key):]
    colon = rest.find(":")
    after = rest[colon + 1:]
    if colon < 0 or after[:1] not in (" ", "\t") or not after.lstrip().startswith("#"):
        return None
    return after.strip()


if TYPE_CHECKING:
    _BaseLoader = yaml.SafeLoader
else:  # libyaml's loader when PyYAML was built with it
    _BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _FastLoader(_BaseLoader):
    """libyaml's C parser: several times faster than ruamel's."""


def fast_load(text: str) -> tuple[Any, Positions]:
    """Data and positions read by libyaml; raises on any problem (then use :func:`load`)."""
    return build(yaml.parse(text, Loader=_FastLoader), text.splitlines())


def load(text: str) -> tuple[Any, Positions]:
    """Data and positions read by ruamel; raises YamlProblem saying what to fix."""
    # Imported here: ruamel is only needed when libyaml refused the file (or for edits),
    # and loading it costs every `newsletter check` about 20 ms.
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    lines = text.splitlines()
    _depth_guard(text)
    try:
        return build(YAML(typ="rt").parse(text), lines)
    except MarkedYAMLError as exc:
        raise explain(exc, lines) from None
    except YAMLError as exc:
        raise YamlProblem(1, 1, f"not valid YAML: {exc}") from None


def _depth_guard(text: str) -> None:
    """Refuse deep nesting before ruamel reads it: its scanner slows down with each level."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_FastLoader):
            kind = type(event).__name__
            if kind in ("MappingStartEvent", "SequenceStartEvent"):
                depth += 1
                if depth > MAX_DEPTH:
                    raise YamlProblem(*_at(event), f"is nested more than {MAX_DEPTH} levels "
                                      "deep; an issue needs at most 4. Check the indentation "
                                      "and the brackets")
            elif kind in ("MappingEndEvent", "SequenceEndEvent"):
                depth -= 1
    except yaml.MarkedYAMLError as exc:
        # libyaml stops at its own limit (1000 levels) before giving any event.
        if "nesting depth" in str(exc.problem) and exc.problem_mark is not None:
            raise YamlProblem(exc.problem_mark.line + 1, exc.problem_mark.column + 1,
                              f"is nested more than {MAX_DEPTH} levels deep; an issue needs "
                              "at most 4. Check the indentation and the brackets") from None
    except yaml.YAMLError:
        return  # ruamel reads it again and explains the mistake


def quoted(value: str) -> str:
    """``value`` in YAML quotes (double unless it holds a double quote)."""
    if '"' not in value:
        return f'"{value}"'
    return "'" + value.replace("'", "''") + "'"


def explain(exc: MarkedYAMLError, lines: list[str]) -> YamlProblem:
    """A parser error in plain words, placed on its line, ending with what to do."""
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or "not valid YAML"
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    match = _KEY_LINE.match(text)
    name = match.group(2).strip() if match else "(yaml)"
    value = text[match.end():].strip() if match else text.strip()
    indent = text[: len(text) - len(text.lstrip())]
    if "\\t" in problem or "\t" in indent:
        field = _KEY_LINE.match(text.replace("\t", " "))
        return YamlProblem(line, col, "a tab is used to indent this line, and tabs can't indent "
                           "in YAML; replace the tab with spaces",
                           field.group(2).strip() if field else "(yaml)")
    if problem.startswith("mapping values are not allowed") and match:
        return YamlProblem(line, col, "the text contains ': ', which YAML reads as the start "
                           f"of a new field; put the text in quotes: {name}: {quoted(value)}",
                           name)
    if problem.startswith("expected <block end>") and match and value[:1] in ("'", '"'):
        return YamlProblem(line, col, "a value that starts with a quote must end with that "
                           "quote; put the whole value in quotes: "
                           f"{name}: {quoted(value)}", name)
    if "end of stream" in problem and "quoted scalar" in str(exc.context) and exc.context_mark:
        start = exc.context_mark
        opened = _KEY_LINE.match(lines[start.line]) if start.line < len(lines) else None
        return YamlProblem(start.line + 1, start.column + 1, "this quote is never closed; add "
                           "the closing quote at the end of the text",
                           opened.group(2).strip() if opened else "(yaml)")
    context = f" ({exc.context})" if exc.context else ""
    return YamlProblem(line, col, f"{problem}{context}; expected valid YAML, e.g. 'field: value' "
                       "with items indented under 'items:'", name)


def read_issue_text(path: Path) -> tuple[str | None, str, int, int]:
    """The file's text, or (None, what is wrong, line, col) when it cannot be used.

    Refuses files over MAX_BYTES and files that are not UTF-8.
    """
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            return None, (f"is {size / 1_000_000:.1f} MB; an issue file can be at most "
                          f"{MAX_BYTES // 1_000_000} MB. Is this the right file?"), 1, 1
        data = path.read_bytes()
    except FileNotFoundError:
        return None, "no such file", 0, 0
    except IsADirectoryError:
        return None, "is a folder; give the path of an issue file", 0, 0
    except OSError as exc:
        return None, f"cannot read: {exc.strerror}", 0, 0
    try:
        return data.decode("utf-8").removeprefix("\ufeff"), "", 0, 0
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, (f"byte 0x{data[exc.start]:02x} is not UTF-8; expected a UTF-8 text file "
                      "(in your editor choose Save As… → Encoding: UTF-8)"), line, col


def plain_data(node: Any) -> Any:
    """ruamel round-trip objects to plain dicts and lists, keeping scalars."""
    if isinstance(node, dict):
        return {str(k): plain_data(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain_data(v) for v in node]
    if isinstance(node, dt.datetime):
        return node
    if isinstance(node, str):
        return str(node)
    return node
