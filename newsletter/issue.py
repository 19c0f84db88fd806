"""The issue file: loading it with line numbers, and checks that explain themselves.

The model is in issue_model; reading YAML (limits, positions, YAML errors in plain
words) is in issue_yaml.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from .errors import IssueFileError
from .issue_model import Issue, IssueModel, Item, json_schema
from .issue_yaml import Positions, YamlProblem, fast_load, load, plain_data, quoted
from .issue_yaml import read_issue_text as _read_text

__all__ = ["Issue", "IssueModel", "Item", "json_schema", "plain_data"]

SUBJECT_MAX = 78
STALE_DAYS = 60
GMAIL_CLIP_BYTES = 102 * 1024
# "TK" is the journalists' mark for "to come"; only in capitals, so "tk" in a word is fine.
PLACEHOLDER = re.compile(r"\bTK\b|(?i:\bTODO\b|\bFIXME\b|lorem ipsum)")

# Per-recipient placeholders start with this (see personalization.TEXT_TOKENS); issue text may not.
TOKEN_MARK = "[[nl:"

Severity = Literal["error", "warning"]


# --- diagnostics -------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem in an issue file, with its position."""

    file: str
    line: int
    col: int
    field: str  # where in the issue, e.g. items[2].url
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        label = "" if self.severity == "error" else "warning: "
        return f"{self.file}:{self.line}:{self.col}: {self.field}: {label}{self.message}"


@dataclass
class CheckResult:
    """Everything known about one issue file after checking it."""

    file: Path
    issue: Issue | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]


def _field_path(loc: Sequence[str | int]) -> str:
    """('items', 2, 'url') -> 'items[3].url' (items are counted from 1, as people count)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        else:
            out += ("." if out else "") + part
    return out or "(file)"


_EXPECTED = {
    "date": "a date written YYYY-MM-DD, e.g. 2021-01-25",
    "published": "a date written YYYY-MM-DD, e.g. 2021-01-14",
    "number": "a whole number, 1 or more",
    "draft": "true or false",
    "items": "a list of items, each starting with '- title:'",
}


def _shown(value: Any) -> str:
    """A value as a person wrote it, never as a Python type."""
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "fields (lines with 'name: value')"
    if isinstance(value, list):
        return "a list (lines starting with '- ')"
    return repr(str(value))


def _message(error: ErrorDetails, model: type[BaseModel]) -> tuple[str, bool]:
    """A plain-language message for one pydantic error, and whether it is about a key."""
    kind = error["type"]
    loc = error["loc"]
    name = next((p for p in reversed(loc) if isinstance(p, str)), "")
    expected = _EXPECTED.get(name)
    if kind == "missing":
        fields = model.model_fields if len(loc) == 1 else Item.model_fields
        info = fields.get(name)
        description = f" ({info.description})" if info and info.description else ""
        return f"required field is missing{description}", False
    if kind == "extra_forbidden":
        allowed = list(IssueModel.model_fields if len(loc) == 1 else Item.model_fields)
        close = difflib.get_close_matches(name, allowed, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown field{hint} Expected one of: {', '.join(allowed)}", True
    if kind == "too_short" and name == "items":
        return "needs at least one item", False
    if kind == "string_too_short":
        return "is empty; write some text here", False
    if kind == "greater_than_equal":
        return f"must be {error['ctx']['ge']} or more", False
    if kind == "value_error":
        return str(error["ctx"]["error"]), False
    if kind == "string_type":
        if error.get("input") is None:
            return "is empty; write some text here", False
        return (f"expected text here, found {_shown(error.get('input'))}; write the text on "
                "the same line as the field name, in quotes if it contains ': '"), False
    if kind == "list_type":
        return f"expected {expected or 'a list'}, found {_shown(error.get('input'))}", False
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return ("expected fields such as 'title:', 'url:' and 'summary:', found "
                f"{_shown(error.get('input'))}"), False
    if expected:
        return f"expected {expected}, got {_shown(error.get('input'))}", False
    return f"{error['msg']}", False


def _comment_message(name: str, comment: str) -> str:
    return (f"is empty, because '#' starts a comment in YAML and the rest of the line is "
            f"ignored; put the text in quotes: {name}: {quoted(comment)}")


def parse_issue_text(
    text: str, path: Path
) -> tuple[IssueModel | None, list[Diagnostic], dict[str, Any] | None]:
    """Parse issue YAML; return the model (or None), every error with its position, the data.

    The data is None when the text is not a mapping of fields.
    """
    try:
        data, positions = load(text)
    except YamlProblem as exc:
        return None, [Diagnostic(str(path), exc.line, exc.col, exc.field, exc.message)], None
    model, diagnostics, data = _validate(data, positions, path)
    return model, diagnostics, data


def _validate(
    data: Any, positions: Positions, path: Path
) -> tuple[IssueModel | None, list[Diagnostic], dict[str, Any] | None]:
    file = str(path)
    if not isinstance(data, dict):
        what = "the file is empty" if data is None else f"found {_shown(data)}"
        return None, [
            Diagnostic(
                file, 1, 1, "(file)",
                f"{what}; expected fields such as 'date:', 'subject:' and 'items:' at the "
                "top of the file (see docs/issue-format.md)",
            )
        ], None
    commented = positions.commented
    diagnostics = [
        Diagnostic(file, *positions.of(loc), _field_path(loc),
                   _comment_message(str(loc[-1]), comment))
        for loc, comment in commented.items()
    ]
    try:
        model = IssueModel.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            if loc in commented:
                continue
            message, about_key = _message(error, IssueModel)
            line, col = positions.of(loc, key_only=about_key)
            diagnostics.append(Diagnostic(file, line, col, _field_path(loc), message))
        return None, sorted(diagnostics + text_diagnostics(data, positions, path)), data
    if diagnostics:
        return None, sorted(diagnostics + text_diagnostics(data, positions, path)), data
    return model, [], data


def _fast_read(text: str) -> tuple[IssueModel, Positions] | None:
    """The model and positions, if libyaml reads the file and it is valid; else None.

    The data is built as by :func:`parse_issue_text`, so when this gives a model it is the
    same model; only errors need the slower parser, which places and explains them.
    """
    try:
        data, positions = fast_load(text)
        if positions.commented:
            return None
        return IssueModel.model_validate(data), positions
    except Exception:  # noqa: BLE001 - any problem: the careful path decides and explains
        return None


def _fast_model(text: str) -> IssueModel | None:
    """The model read the fast way, or None (see :func:`_fast_read`)."""
    found = _fast_read(text)
    return found[0] if found else None


def read_issue_text(path: Path) -> tuple[str | None, list[Diagnostic]]:
    """The file's text, or a diagnostic if it is too big or cannot be read as UTF-8."""
    text, problem, line, col = _read_text(path)
    if text is None:
        return None, [Diagnostic(str(path), line, col, "(file)", problem)]
    return text, []


def content_diagnostics(model: IssueModel, positions: Positions, path: Path) -> list[Diagnostic]:
    """Checks of a valid model's content: mostly warnings (allowed but probably wrong)."""
    found, warn = _reporter(positions, path)
    if not model.preheader:
        warn(["subject"], "no preheader; inboxes will show the first words of the email "
             "instead. Add 'preheader:' with one sentence that invites people to open it")
    if len(model.subject) > SUBJECT_MAX:
        warn(["subject"], f"is {len(model.subject)} characters; keep it to {SUBJECT_MAX} or "
             "fewer so inboxes do not cut it off")
    for index, item in enumerate(model.items):
        if item.published:
            age = (model.date - item.published).days
            if age > STALE_DAYS:
                warn(["items", index, "published"],
                     f"{item.published.isoformat()} is {age} days before the issue date "
                     f"{model.date.isoformat()}; is the year right?")
            elif age < 0:
                warn(["items", index, "published"],
                     f"{item.published.isoformat()} is after the issue date "
                     f"{model.date.isoformat()}")
    _text_checks(model, model.items, warn)
    return found


def text_diagnostics(data: dict[str, Any], positions: Positions, path: Path) -> list[Diagnostic]:
    """The checks of :func:`content_diagnostics` that need no valid model (links, TODOs).

    So a file with errors still shows its warnings: every problem at once.
    """
    found, warn = _reporter(positions, path)
    items = data.get("items")
    _text_checks(data, items if isinstance(items, list) else [], warn)
    return found


_Warn = Callable[..., None]


def _reporter(positions: Positions, path: Path) -> tuple[list[Diagnostic], _Warn]:
    found: list[Diagnostic] = []

    def warn(loc: list[str | int], message: str, severity: Severity = "warning") -> None:
        line, col = positions.of(tuple(loc))
        found.append(Diagnostic(str(path), line, col, _field_path(loc), message, severity))

    return found, warn


def _text_checks(top: Any, items: Sequence[Any], warn: _Warn) -> None:
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        url = _get(item, "url")
        if not isinstance(url, str):
            continue
        key = url_key(url)
        if key in seen:
            warn(["items", index, "url"],
                 f"same link as items[{seen[key] + 1}]; is this story in the issue twice?")
        else:
            seen[key] = index
    for loc, text in _texts(top, items):
        if TOKEN_MARK in text:
            warn(loc, f"contains {TOKEN_MARK!r}, which is reserved for the per-reader parts "
                 "of the email; remove it", "error")
        match = PLACEHOLDER.search(text)
        if match:
            warn(loc, f"contains the placeholder {match.group(0)!r}; replace it before sending")


def _get(obj: Any, name: str) -> Any:
    """A field of an Item/IssueModel, or of the plain data of one (None if not there)."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None) if isinstance(obj, (Item, IssueModel)) else None


def _texts(top: Any, items: Sequence[Any]) -> Iterable[tuple[list[str | int], str]]:
    for name in ("subject", "preheader", "intro"):
        value = _get(top, name)
        if isinstance(value, str) and value:
            yield [name], value
    for index, item in enumerate(items):
        for name in ("title", "url", "summary", "source", "photo_credit", "image", "image_alt",
                     "section"):
            value = _get(item, name)
            if isinstance(value, str) and value:
                yield ["items", index, name], value


TRACKING_PARAMS = re.compile(
    r"^(utm_\w+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|igshid|_ga|_gl|ocid)$", re.IGNORECASE
)


def is_tracking_param(name: str) -> bool:
    """True for query parameters that only track clicks (utm_*, fbclid, ...)."""
    return bool(TRACKING_PARAMS.match(name))


def url_key(url: str) -> str:
    """What two links to the same story have in common.

    Ignores http/https, 'www.', letter case of the host, a trailing slash,
    tracking parameters, the order of parameters and the #fragment.
    """
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.")
    try:
        port = parts.port
    except ValueError:
        port = None
    if port and port not in (80, 443):
        host = f"{host}:{port}"
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not is_tracking_param(k)
    )
    return f"{host}{parts.path.rstrip('/')}?{urlencode(query)}"


def check_file(path: Path, numbered_from: Sequence[Path] = ()) -> CheckResult:
    """Load and check one issue file without rendering it.

    ``numbered_from`` is the project's issue files; when the issue has no number,
    it is counted from the first of them.
    """
    result = CheckResult(path)
    text, problems = read_issue_text(path)
    if text is None:
        result.diagnostics = problems
        return result
    found = _fast_read(text)
    if found is None:
        try:
            data, positions = load(text)
        except YamlProblem as exc:
            result.diagnostics = [Diagnostic(str(path), exc.line, exc.col, exc.field,
                                             exc.message)]
            return result
        model, result.diagnostics, _data = _validate(data, positions, path)
        if model is None:
            return result
    else:
        model, positions = found
    result.diagnostics = sorted(content_diagnostics(model, positions, path))
    result.issue = Issue(path, model, _number(path, model, numbered_from))
    return result


def _number(path: Path, model: IssueModel, files: Sequence[Path]) -> int:
    """The explicit number, else counted through ``files``; 0 when there is nothing to count."""
    if model.number is not None:
        return model.number
    return issue_number(path, files) if files else 0


def load_issue(path: Path, numbered_from: Sequence[Path] = ()) -> Issue:
    """Load a valid issue, or raise IssueFileError listing every error.

    ``numbered_from`` is the project's issue files; when the issue has no
    number, it is counted from the first of them.
    """
    result = check_file(path, numbered_from)
    if result.errors or result.issue is None:
        raise IssueFileError(
            f"{path} has {len(result.errors)} error(s):\n  "
            + "\n  ".join(str(d) for d in result.errors),
            diagnostics=result.errors,
            hint=f"Fix them, then run `newsletter check {path}`.",
        )
    return result.issue


def issue_number(path: Path, files: Sequence[Path]) -> int:
    """Number of the issue at ``path`` counted through ``files`` (sorted by name).

    An explicit ``number:`` resets the count; otherwise each file is one more
    than the one before it, starting at 1.
    """
    number = 0
    target = path.resolve()
    ordered = sorted({p.resolve() for p in files} | {target}, key=lambda p: p.name)
    for file in ordered:
        explicit = _explicit_number(file)
        number = explicit if explicit is not None else number + 1
        if file == target:
            return number
    return number


_NUMBER_LINE = re.compile(r"^number:\s*(\d+)\s*(?:#.*)?$", re.MULTILINE)


def _explicit_number(path: Path) -> int | None:
    try:
        match = _NUMBER_LINE.search(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    return int(match.group(1)) if match else None
