"""Issue files built to exhaust memory or the stack are refused at once, in words."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from newsletter.issue import check_file
from newsletter.issue_yaml import MAX_BYTES, MAX_DEPTH

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def messages(tmp_path: Path, text: str | bytes) -> tuple[list[str], float]:
    path = tmp_path / "issue.yaml"
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    started = time.perf_counter()
    result = check_file(path)
    elapsed = time.perf_counter() - started
    assert result.issue is None
    return [str(d).removeprefix(f"{path}:") for d in result.errors], elapsed


def test_billion_laughs_is_refused_quickly(tmp_path: Path) -> None:
    found, elapsed = messages(tmp_path, BOMB)
    assert elapsed < 0.5
    assert found == ["1:4: a: '&' and '*' (YAML anchors and aliases) are not allowed in an "
                     "issue file; write the text out in full, or put it in quotes if it "
                     "starts with '&' or '*'"]


def test_an_alias_alone_is_refused(tmp_path: Path) -> None:
    found, _ = messages(tmp_path, "date: 2021-02-01\nsubject: *s\n")
    assert found[0].startswith("2:10: subject: '&' and '*'")


@pytest.mark.parametrize("text", [
    "date: 2021-02-01\nintro: " + "[" * 5000 + "]" * 5000 + "\n",
    "date: 2021-02-01\nintro:\n" + "".join(" " * n + "- \n" for n in range(0, 200, 2)),
    "date: 2021-02-01\nintro: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n",
])
def test_deep_nesting_is_refused_quickly(tmp_path: Path, text: str) -> None:
    found, elapsed = messages(tmp_path, text)
    assert elapsed < 0.5
    assert len(found) == 1 and f"is nested more than {MAX_DEPTH} levels deep" in found[0]


def test_nesting_up_to_the_limit_is_only_a_model_error(tmp_path: Path) -> None:
    found, _ = messages(tmp_path, "date: 2021-02-01\nintro: " + "[" * (MAX_DEPTH - 1)
                        + "]" * (MAX_DEPTH - 1) + "\n")
    assert not any("nested" in line for line in found)


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    found, elapsed = messages(tmp_path, "intro: |\n" + "  words\n" * (MAX_BYTES // 8 + 1))
    assert elapsed < 0.5
    assert found == ["1:1: (file): is 1.0 MB; an issue file can be at most 1 MB. Is this the "
                     "right file?"]


def test_tags_are_refused(tmp_path: Path) -> None:
    found, _ = messages(tmp_path, "date: !!timestamp 2021-02-01\n")
    assert found[0].startswith("1:7: (yaml): the tag !!timestamp is not allowed")


def test_a_second_document_is_refused(tmp_path: Path) -> None:
    found, _ = messages(tmp_path, "date: 2021-02-01\n---\ndate: 2021-02-08\n")
    assert "starts a second document" in found[0]
