"""The two ways of reading an issue file must agree on what it says.

newsletter/issue.py reads a file first with libyaml (PyYAML's CSafeLoader, YAML
1.1, fast); only when that gives no valid model does the round-trip parser
(ruamel, YAML 1.2, which places errors on lines) read it again and decide. So
whenever the fast path gives a model, it must be the model the round-trip parser
gives; otherwise the meaning of a file would depend on whether it has an error
somewhere else.

Each case below is a small issue file; the fast path may give no model (it then
defers), but when it gives one, the round-trip parser must give the same.
Both paths now build their data with the same function (issue_yaml.build), keeping
scalars as the text written; these tests keep it that way.
"""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from newsletter.issue import _fast_model, parse_issue_text
from tests.plugins.determinism import session_seed

# Scalars as written after "field: " (plain unless quoted here).
CORNERS = [
    "010", "0010", "0_10", "08", "09", "0o17", "0b101", "0x1F", "1_000", "+12", "+010", "-3",
    "0", "7", "1e3", "1.0e+3", "1.5", ".inf", "-.inf", ".nan", ".NaN",
    "on", "off", "yes", "no", "y", "n", "Yes", "NO", "On", "true", "True", "FALSE",
    "~", "null", "Null", "",
    "2021-02-01", "2021-2-1", "2021-02-01 10:00:00", "2021-02-01T10:00:00Z",
    "2021-02-01 00:00:00", "12:30", "1:20", "190:20:30",
    "'010'", '"yes"', "'12:30'", '"1e3"', "'~'", '"2021-02-01"', "!!str 010",
]
FIELDS = ["number", "subject", "draft", "date", "title", "published"]
TEXT_FIELDS = ["subject", "preheader", "intro", "title", "source", "section",
               "photo_credit", "summary"]
ITEM_FIELDS = {"title", "url", "summary", "source", "published", "photo_credit", "image",
               "image_alt", "section"}

# Known disagreements (none left: both paths build their data with issue_yaml.build).
KNOWN: dict[tuple[str, str], str] = {}
KNOWN_KEYS: dict[str, str] = {}


@dataclass(frozen=True)
class Outcome:
    """What one path made of a file: the model's fields, or None (no valid model)."""

    model: dict[str, Any] | None


def fast(text: str) -> Outcome:
    """The libyaml path, exactly as check_file takes it first."""
    model = _fast_model(text)
    return Outcome(None if model is None else model.model_dump())


def round_trip(text: str) -> Outcome:
    """The ruamel path, which decides when the fast path gives no model."""
    model, _diagnostics, _data = parse_issue_text(text, Path("issue.yaml"))
    return Outcome(None if model is None else model.model_dump())


def assert_agree(text: str) -> None:
    """When the fast path gives a model, it is the round-trip parser's model."""
    quick = fast(text)
    if quick.model is not None:
        assert quick == round_trip(text), f"the two paths read this differently:\n{text}"


def issue_text(top: dict[str, str], items: list[dict[str, str]], *, keys: dict[str, str] | None
               = None) -> str:
    """An issue file from raw YAML scalars; ``keys`` rewrites how a field name is written."""
    keys = keys or {}
    lines = [f"{keys.get(k, k)}: {v}".rstrip() for k, v in top.items()]
    lines.append("items:")
    for item in items:
        for n, (k, v) in enumerate(item.items()):
            lines.append(f"{'  - ' if n == 0 else '    '}{k}: {v}".rstrip())
    return "\n".join(lines) + "\n"


def with_value(field: str, value: str) -> str:
    """A valid issue file, except that ``field`` is written as ``value``."""
    top = {"date": "2021-02-01", "subject": "Hello"}
    item = {"title": "A story", "url": "https://example.org/a", "summary": "Some text."}
    (item if field in ITEM_FIELDS else top)[field] = value
    return issue_text(top, [item])


def _fixed_cases() -> list[Any]:
    cases = []
    for field in FIELDS:
        for value in CORNERS:
            reason = KNOWN.get((field, value))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            cases.append(pytest.param(field, value, marks=marks, id=f"{field}: {value}"))
    return cases


@pytest.mark.parametrize(("field", "value"), _fixed_cases())
def test_corner_case_reads_the_same_both_ways(field: str, value: str) -> None:
    assert_agree(with_value(field, value))


@pytest.mark.parametrize("line", [
    pytest.param(line, marks=[pytest.mark.xfail(strict=True, reason=reason)] if reason else [],
                 id=line)
    for line in ["number: 010", "number: 010 # ten", '"number": 010', "'number': 010",
                 "number : 010", "number: 0010", "number: -010"]
    for reason in [KNOWN_KEYS.get(line)]
])
def test_how_the_number_field_is_written_does_not_change_its_value(line: str) -> None:
    key, value = line.split(":", 1)
    assert_agree(issue_text({"date": "2021-02-01", "subject": "Hi", key: value.strip()},
                            [{"title": "A", "url": "https://example.org/a", "summary": "S"}]))


def test_the_fast_path_is_taken_for_ordinary_files() -> None:
    # Otherwise the tests above would compare nothing.
    text = with_value("subject", "'Plain words'")
    assert fast(text).model is not None
    assert fast(text) == round_trip(text)


def test_a_disagreement_would_be_caught() -> None:
    # The comparison can fail: outcomes of different files differ.
    assert fast(with_value("number", "7")) != round_trip(with_value("number", "8"))


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("number", "010", 10), ("number", "+010", 10), ("number", "!!str 010", 10),
    ("subject", "08", "08"), ("subject", "1e3", "1e3"), ("subject", "0o17", "0o17"),
    ("subject", "!!str 010", "010"), ("subject", "yes", "yes"), ("title", "12:30", "12:30"),
])
def test_values_mean_what_a_comms_user_wrote(field: str, value: str, expected: Any) -> None:
    model = fast(with_value(field, value)).model
    assert model is not None
    got = model["items"][0][field] if field in ITEM_FIELDS else model[field]
    assert got == expected


@pytest.mark.parametrize("value", ["on", "yes", "12:30", "1:20", "190:20:30", "0x1F", "1e3"])
def test_a_number_written_another_way_is_an_error(value: str) -> None:
    text = with_value("number", value)
    assert fast(text).model is None and round_trip(text).model is None


# ---------------------------------------------------------------- generated files


def _pool(field: str) -> list[str]:
    """Values for ``field`` that are not known disagreements (those are tested above)."""
    if field in ("date", "published"):
        values = [v for v in CORNERS if v[:1].isdigit() or v[:1] in "'\"~"] + ["2024-02-29"]
    elif field == "draft":
        values = [v for v in CORNERS if v.isalpha() or v in ("~", "0", "7", "")]
    elif field == "number":
        values = CORNERS
    else:  # text: anything, plus quoted forms of every corner value
        values = CORNERS + [json.dumps(v) for v in CORNERS] + ["Ürümqi: a report", "'it''s'"]
    return [v for v in values if (field, v) not in KNOWN]


@functools.cache
def _readable(field: str) -> list[str]:
    """The values of ``_pool(field)`` that the fast path accepts in an otherwise valid file."""
    return [v for v in _pool(field) if fast(with_value(field, v)).model is not None]


def _pick(rng: random.Random, field: str) -> str:
    """Mostly a value the fast path accepts (so there is a model to compare), else any."""
    return rng.choice(_readable(field) if rng.random() < 0.85 else _pool(field))


def _variant(rng: random.Random) -> str:
    top: dict[str, str] = {"date": _pick(rng, "date")}
    for field in ("subject", "preheader", "intro", "number", "draft"):
        if field == "subject" or rng.random() < 0.5:
            top[field] = _pick(rng, field)
    fields = list(top.items())
    rng.shuffle(fields)
    items = []
    for n in range(rng.randint(1, 3)):
        item = {"title": _pick(rng, "title"), "url": f"https://example.org/{n}?a=1&b=2",
                "summary": rng.choice(["|\n      Block text: 010, yes, 12:30.",
                                       _pick(rng, "summary")])}
        for field in ("source", "published", "section", "photo_credit"):
            if rng.random() < 0.4:
                item[field] = _pick(rng, field)
        items.append(item)
    return issue_text(dict(fields), items)


def _variants(count: int = 200) -> list[Any]:
    rng = random.Random(f"{session_seed()}:yaml-differential")
    return [pytest.param(_variant(rng), id=f"variant-{n:03d}") for n in range(count)]


@pytest.mark.parametrize("text", _variants())
def test_generated_issue_file_reads_the_same_both_ways(text: str) -> None:
    assert_agree(text)


def test_generated_files_include_valid_ones() -> None:
    # If no generated file were valid, the comparison above would be empty.
    valid = sum(fast(p.values[0]).model is not None for p in _variants())
    assert valid >= 50, f"only {valid} of 200 generated files are valid"
