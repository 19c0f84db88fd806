"""The issue file: its model, loading with line numbers, and checks that explain themselves."""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .errors import IssueFileError

SUBJECT_MAX = 78
STALE_DAYS = 60
GMAIL_CLIP_BYTES = 102 * 1024
# "TK" is the journalists' mark for "to come"; only in capitals, so "tk" in a word is fine.
PLACEHOLDER = re.compile(r"\bTK\b|(?i:\bTODO\b|\bFIXME\b|lorem ipsum)")

# Per-recipient placeholders start with this (see render.TEXT_TOKENS); issue text may not.
TOKEN_MARK = "[[nl:"

Severity = Literal["error", "warning"]


# --- the model ---------------------------------------------------------------------------


def _one_line(value: str) -> str:
    if "\n" in value.strip():
        raise ValueError("must be a single line; remove the line break")
    return value.strip()


def _web_url(value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in schemes or not parts.netloc:
        wanted = " or ".join(f"{scheme}://" for scheme in schemes)
        raise ValueError(f"expected a full web address starting with {wanted}, got {value!r}")
    return value.strip()


class Item(BaseModel):
    """One news summary in an issue."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, description="Headline, one line.")
    url: str = Field(description="Link to the full story (http or https).")
    summary: str = Field(
        min_length=1, description="A few sentences, in Markdown. Raw HTML is shown as text."
    )
    source: str | None = Field(None, description="Publication, e.g. 'The Guardian'.")
    published: dt.date | None = Field(None, description="Publication date, YYYY-MM-DD.")
    photo_credit: str | None = Field(None, description="Who took the photo, e.g. 'Reuters'.")
    image: str | None = Field(None, description="Picture for the item (an https address).")
    image_alt: str | None = Field(
        None,
        validate_default=True,
        description="Describes the picture for people who cannot see it. Required with image.",
    )
    section: str | None = Field(None, description="Heading to group items under.")

    @field_validator("title")
    @classmethod
    def _title_one_line(cls, value: str) -> str:
        return _one_line(value)

    @field_validator("url")
    @classmethod
    def _url_http(cls, value: str) -> str:
        return _web_url(value, ("http", "https"))

    @field_validator("image")
    @classmethod
    def _image_https(cls, value: str | None) -> str | None:
        return None if value is None else _web_url(value, ("https",))

    @field_validator("image_alt")
    @classmethod
    def _alt_with_image(cls, value: str | None, info: ValidationInfo) -> str | None:
        # "image" is validated first. It is missing from info.data when it was given but
        # invalid: it still needs its alt text, so that is reported at the same time.
        has_image = info.data.get("image") or "image" not in info.data
        if has_image and not (value or "").strip():
            raise ValueError("required when image is given; describe the picture in a few words")
        return value


class IssueModel(BaseModel):
    """What an issue file may contain."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        title="Newsletter issue",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    date: dt.date = Field(description="The day the issue goes out, YYYY-MM-DD.")
    number: int | None = Field(
        None, ge=1, description="Issue number; counted from the first issue when left out."
    )
    subject: str = Field(min_length=1, description="Email subject line, one line.")
    preheader: str | None = Field(
        None, description="Preview text shown after the subject in the inbox."
    )
    intro: str | None = Field(None, description="Opening words, in Markdown.")
    items: list[Item] = Field(min_length=1, description="The news summaries, in order.")
    draft: bool = Field(False, description="Drafts are left out of the web archive.")

    @field_validator("subject")
    @classmethod
    def _subject_one_line(cls, value: str) -> str:
        return _one_line(value)


@dataclass(frozen=True)
class Issue:
    """A loaded, valid issue: the model plus where it came from."""

    path: Path
    model: IssueModel
    number: int

    @property
    def name(self) -> str:
        """The file's stem, used for output files and archive URLs."""
        return self.path.stem

    # The model's fields that templates and callers read from the issue itself.
    @property
    def date(self) -> dt.date:
        """The day the issue goes out."""
        return self.model.date

    @property
    def subject(self) -> str:
        """The email's subject line."""
        return self.model.subject

    @property
    def preheader(self) -> str | None:
        """The preview text shown after the subject in inboxes."""
        return self.model.preheader

    @property
    def intro(self) -> str | None:
        """The opening words, in Markdown."""
        return self.model.intro

    @property
    def items(self) -> list[Item]:
        """The news summaries, in file order."""
        return self.model.items

    @property
    def draft(self) -> bool:
        """Drafts are left out of the web archive."""
        return self.model.draft

    @property
    def sections(self) -> list[tuple[str | None, list[Item]]]:
        """Items grouped by consecutive section headings, in file order."""
        groups: list[tuple[str | None, list[Item]]] = []
        for item in self.model.items:
            if groups and groups[-1][0] == item.section:
                groups[-1][1].append(item)
            else:
                groups.append((item.section, [item]))
        return groups


def json_schema() -> dict[str, Any]:
    """The JSON Schema of issue files, for editors."""
    return IssueModel.model_json_schema()


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


def _position(root: Any, loc: Sequence[str | int], key_only: bool = False) -> tuple[int, int]:
    """1-based (line, col) of the YAML node at ``loc``, or of its nearest existing parent."""
    node = root
    line, col = 0, 0
    for part in loc:
        if isinstance(node, CommentedMap) and isinstance(part, str) and part in node:
            pos = node.lc.key(part) if key_only else node.lc.value(part)
            line, col = pos
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line, col = node.lc.item(part)
            node = node[part]
        else:
            break
    else:
        return line + 1, col + 1
    if node is root:
        return 1, 1
    return line + 1, col + 1


_EXPECTED = {
    "date": "a date written YYYY-MM-DD, e.g. 2021-01-25",
    "published": "a date written YYYY-MM-DD, e.g. 2021-01-14",
    "number": "a whole number, 1 or more",
    "draft": "true or false",
    "items": "a list of items, each starting with '- title:'",
}


def _message(error: dict[str, Any], model: type[BaseModel]) -> tuple[str, bool]:
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
    if kind in ("string_type",):
        return f"expected text, got {type(error['input']).__name__}", False
    if kind == "list_type":
        return f"expected {expected or 'a list'}", False
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "expected fields such as 'title:', 'url:' and 'summary:'", False
    if expected:
        return f"expected {expected}, got {error.get('input')!r}", False
    return f"{error['msg']}", False


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    return yaml


def parse_issue_text(text: str, path: Path) -> tuple[IssueModel | None, list[Diagnostic], Any]:
    """Parse issue YAML; return the model (or None) and every error, with positions."""
    file = str(path)
    try:
        data = _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or "not valid YAML"
        context = f" ({exc.context})" if exc.context else ""
        return None, [
            Diagnostic(
                file, line, col, "(yaml)",
                f"{problem}{context}; expected valid YAML, e.g. 'field: value' with items "
                "indented under 'items:'",
            )
        ], None
    except YAMLError as exc:
        return None, [Diagnostic(file, 1, 1, "(yaml)", f"not valid YAML: {exc}")], None
    if not isinstance(data, CommentedMap):
        return None, [
            Diagnostic(
                file, 1, 1, "(file)",
                "expected fields such as 'date:', 'subject:' and 'items:' at the top of the file",
            )
        ], data
    try:
        return IssueModel.model_validate(plain_data(data)), [], data
    except ValidationError as exc:
        diagnostics = []
        for error in exc.errors():
            loc = list(error["loc"])
            message, about_key = _message(error, IssueModel)
            line, col = _position(data, loc, key_only=about_key)
            diagnostics.append(Diagnostic(file, line, col, _field_path(loc), message))
        return None, sorted(diagnostics), data


def plain_data(node: Any) -> Any:
    """ruamel round-trip objects to plain dicts and lists, keeping scalars."""
    if isinstance(node, dict):
        return {str(k): plain_data(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain_data(v) for v in node]
    if isinstance(node, dt.datetime):
        return node  # pydantic rejects a datetime with a time for a date: the error says why
    if isinstance(node, str):
        return str(node)
    return node


class _FastLoader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):
    """libyaml's C parser: about 20 times faster than the round-trip parser."""


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    pairs = loader.construct_pairs(node, deep=True)
    if len({key for key, _ in pairs}) != len(pairs):
        raise yaml.constructor.ConstructorError(None, None, "duplicate key", node.start_mark)
    return dict(pairs)


_FastLoader.add_constructor("tag:yaml.org,2002:map", _unique_mapping)


def _fast_model(text: str) -> IssueModel | None:
    """The model, if the file is valid when read the fast way; else None.

    libyaml reads YAML 1.1, where `no` is false and 010 is 8. Where that makes a
    difference the strict model rejects the value and the file is read again by
    the round-trip parser, which decides, and which places every error.
    """
    try:
        data = yaml.load(text, Loader=_FastLoader)  # noqa: S506 (a safe loader)
        model = IssueModel.model_validate(data)
    except (yaml.YAMLError, ValidationError, TypeError, ValueError):
        return None
    if model.number is not None and re.search(r"^number:\s*0", text, re.MULTILINE):
        return None  # 010: octal in YAML 1.1, ten in YAML 1.2
    return model


def read_issue_text(path: Path) -> tuple[str | None, list[Diagnostic]]:
    """The file's text, or a diagnostic if it cannot be read as UTF-8."""
    file = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, [Diagnostic(file, 0, 0, "(file)", "no such file")]
    except OSError as exc:
        return None, [Diagnostic(file, 0, 0, "(file)", f"cannot read: {exc.strerror}")]
    try:
        return data.decode("utf-8").removeprefix("\ufeff"), []
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [
            Diagnostic(
                file, line, col, "(file)",
                f"byte 0x{data[exc.start]:02x} is not UTF-8; expected a UTF-8 text file "
                "(in your editor choose Save As… → Encoding: UTF-8)",
            )
        ]


def content_diagnostics(model: IssueModel, data: Any, path: Path) -> list[Diagnostic]:
    """Checks of a valid model's content: mostly warnings (allowed but probably wrong).

    ``data`` is the round-trip YAML (for positions), or a function returning it,
    called only when there is something to report.
    """
    file = str(path)
    found: list[Diagnostic] = []
    positions: list[Any] = []

    def _load() -> Any:
        if not positions:
            positions.append(data() if callable(data) else data)
        return positions[0]

    def warn(loc: list[str | int], message: str, severity: Severity = "warning") -> None:
        line, col = _position(_load(), loc)
        found.append(Diagnostic(file, line, col, _field_path(loc), message, severity))

    if not model.preheader:
        warn(["subject"], "no preheader; inboxes will show the first words of the email "
             "instead. Add 'preheader:' with one sentence that invites people to open it")
    if len(model.subject) > SUBJECT_MAX:
        warn(["subject"], f"is {len(model.subject)} characters; keep it to {SUBJECT_MAX} or "
             "fewer so inboxes do not cut it off")
    seen: dict[str, int] = {}
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
        key = url_key(item.url)
        if key in seen:
            warn(["items", index, "url"],
                 f"same link as items[{seen[key] + 1}]; is this story in the issue twice?")
        else:
            seen[key] = index
    for loc, text in _texts(model):
        if TOKEN_MARK in text:
            warn(loc, f"contains {TOKEN_MARK!r}, which is reserved for the per-reader parts "
                 "of the email; remove it", "error")
        match = PLACEHOLDER.search(text)
        if match:
            warn(loc, f"contains the placeholder {match.group(0)!r}; replace it before sending")
    return found


def _texts(model: IssueModel) -> Iterable[tuple[list[str | int], str]]:
    for name in ("subject", "preheader", "intro"):
        value = getattr(model, name)
        if value:
            yield [name], value
    for index, item in enumerate(model.items):
        for name in ("title", "url", "summary", "source", "photo_credit", "image", "image_alt",
                     "section"):
            value = getattr(item, name)
            if value:
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
    model = _fast_model(text)
    if model is not None:
        # Valid: the slower round-trip parse is needed only to place warnings.
        result.diagnostics = sorted(content_diagnostics(model, lambda: _yaml().load(text), path))
        result.issue = Issue(path, model, _number(path, model, numbered_from))
        return result
    model, problems, data = parse_issue_text(text, path)
    result.diagnostics = problems
    if model is not None:
        result.diagnostics = sorted(problems + content_diagnostics(model, data, path))
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
