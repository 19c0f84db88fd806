"""The issue file format: validation that names file, line, column and field."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from newsletter.errors import IssueFileError
from newsletter.issue import check_file, issue_number, json_schema, load_issue

from .conftest import REPO, SAMPLE_ISSUE

GOOD = """\
date: 2026-01-05
subject: Hello
preheader: A short line.
items:
  - title: First
    url: https://example.org/a
    summary: Some text.
"""


def write(tmp_path: Path, text: str, name: str = "issue.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def messages(path: Path) -> list[str]:
    return [str(d) for d in check_file(path).diagnostics]


def test_sample_issue_has_all_eight_items_of_the_seed() -> None:
    issue = load_issue(SAMPLE_ISSUE)
    assert len(issue.items) == 8
    # (The titles are compared with ../shared/seeds in test_shared_files.py.)
    assert issue.items[2].source == "BuzzFeed.News"
    assert issue.items[7].photo_credit == "Greg Baker/AFP"


def test_issue_names_its_attributes_and_a_typo_is_an_error() -> None:
    issue = load_issue(SAMPLE_ISSUE)
    assert (issue.subject, issue.date, issue.draft) == (
        issue.model.subject, issue.model.date, issue.model.draft)
    assert issue.preheader == issue.model.preheader and issue.intro == issue.model.intro
    with pytest.raises(AttributeError):
        issue.subjet  # type: ignore[attr-defined]  # noqa: B018


def test_diagnostic_says_which_field_and_result_which_file(tmp_path: Path) -> None:
    path = tmp_path / "issue.yaml"
    path.write_text(SAMPLE_ISSUE.read_text(encoding="utf-8").replace(
        "subject:", "subjectt:", 1), encoding="utf-8")
    result = check_file(path)
    assert result.file == path
    assert {d.field for d in result.errors} >= {"subjectt", "subject"}
    assert all(d.file == str(path) for d in result.diagnostics)


def test_valid_file_has_no_diagnostics(tmp_path: Path) -> None:
    assert messages(write(tmp_path, GOOD)) == []


def test_every_error_is_reported_at_once_with_position(tmp_path: Path) -> None:
    path = write(tmp_path, """\
date: 25 January 2021
subjct: Hello
items:
  - title: A
    url: ftp://example.org/a
    summary: Text
    image: https://example.org/a.png
  - url: https://example.org/b
    summary: ""
draft: maybe
""")
    found = messages(path)
    expected = [
        f"{path}:1:1: subject: required field is missing",
        f"{path}:1:7: date: expected a date written YYYY-MM-DD",
        f"{path}:2:1: subjct: unknown field; did you mean 'subject'?",
        f"{path}:5:10: items[1].url: expected a full web address starting with http:// or "
        "https://, got 'ftp://example.org/a'",
        f"{path}:4:5: items[1].image_alt: required when image is given",
        f"{path}:8:5: items[2].title: required field is missing",
        f"{path}:9:14: items[2].summary: is empty",
        f"{path}:10:8: draft: expected true or false",
    ]
    for start in expected:
        assert any(line.startswith(start) for line in found), (start, found)
    assert len(found) == len(expected)
    result = check_file(path)
    assert result.issue is None and len(result.errors) == len(expected)


def test_unknown_item_field_is_an_error_not_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "    photo_credits: Reuters\n")
    (line,) = messages(path)
    assert line.startswith(f"{path}:8:5: items[1].photo_credits: unknown field; did you mean "
                           "'photo_credit'?")


def test_yaml_syntax_error_is_a_diagnostic_not_a_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, 'date: 2026-01-05\nsubject: "unclosed\nitems: [\n')
    (line,) = messages(path)
    assert line == (f"{path}:2:10: subject: this quote is never closed; add the closing "
                    "quote at the end of the text")


def test_tab_indentation_points_at_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "date: 2026-01-05\nsubject: x\nitems:\n\t- title: a\n")
    (line,) = messages(path)
    assert line.startswith(f"{path}:4:")


def test_file_that_is_not_utf8_names_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("date: 2026-01-05\nsubject: Caf\u00e9\n".encode("latin-1"))
    (line,) = messages(path)
    assert line.startswith(f"{path}:2:13: (file): byte 0xe9 is not UTF-8")


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert messages(path) == []


def test_duplicate_key_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "subject: Again\n")
    (line,) = messages(path)
    assert line == (f"{path}:8:1: subject: 'subject' is written twice (a duplicate; the first "
                    "is on line 2); keep one of them")


def test_http_only_urls_and_https_images(tmp_path: Path) -> None:
    text = GOOD.replace("https://example.org/a", "javascript:alert(1)")
    (line,) = messages(write(tmp_path, text))
    assert "items[1].url" in line
    text = GOOD + "    image: http://example.org/a.png\n    image_alt: A cat\n"
    (line,) = messages(write(tmp_path, text, "b.yaml"))
    assert "items[1].image: expected a full web address starting with https://" in line


def test_warnings_do_not_make_errors(tmp_path: Path) -> None:
    path = write(tmp_path, """\
date: 2021-02-01
subject: A subject line that goes on and on and on, far longer than any inbox would show it
intro: TK
items:
  - title: Old story
    url: https://example.org/a
    published: 2020-01-14
    summary: Lorem ipsum dolor sit amet.
  - title: Same link
    url: https://www.example.org/a/?utm_source=newsletter#top
    summary: TODO write this
""")
    result = check_file(path)
    assert result.errors == []
    text = "\n".join(str(w) for w in result.warnings)
    assert f"{path}:2:10: subject: warning: no preheader" in text
    assert "subject: warning: is 82 characters; keep it to 78" in text
    assert f"{path}:7:16: items[1].published: warning: 2020-01-14 is 384 days before" in text
    assert f"{path}:10:10: items[2].url: warning: same link as items[1]" in text
    assert "intro: warning: contains the placeholder 'TK'" in text
    assert "items[1].summary: warning: contains the placeholder 'Lorem ipsum'" in text
    assert "items[2].summary: warning: contains the placeholder 'TODO'" in text
    assert len(result.warnings) == 7


def test_lowercase_tk_inside_words_is_not_a_placeholder(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("Some text.", "Atkins spoke in Tkvarcheli."))
    assert messages(path) == []


def test_sample_issue_warns_about_the_2020_articles() -> None:
    warnings = [str(w) for w in check_file(SAMPLE_ISSUE).warnings]
    assert len(warnings) == 2
    assert all("days before the issue date" in w for w in warnings)


def test_load_issue_raises_with_every_error(tmp_path: Path) -> None:
    path = write(tmp_path, "date: nope\nitems: []\n")
    with pytest.raises(IssueFileError) as caught:
        load_issue(path)
    assert len(caught.value.diagnostics) == 3
    assert "newsletter check" in (caught.value.hint or "")


def test_numbers_count_from_the_first_issue(tmp_path: Path) -> None:
    first = write(tmp_path, GOOD, "2026-01-05.yaml")
    second = write(tmp_path, GOOD.replace("2026-01-05", "2026-01-12"), "2026-01-12.yaml")
    third = write(tmp_path, "number: 40\n" + GOOD, "2026-01-19.yaml")
    fourth = write(tmp_path, GOOD, "2026-01-26.yaml")
    files = [first, second, third, fourth]
    assert [issue_number(f, files) for f in files] == [1, 2, 40, 41]
    assert load_issue(second, files).number == 2
    assert load_issue(third, files).number == 40


def test_json_schema_accepts_the_sample_and_rejects_typos() -> None:
    schema = json_schema()
    data = YAML(typ="safe").load(SAMPLE_ISSUE.read_text(encoding="utf-8"))
    data = json.loads(json.dumps(data, default=str))
    jsonschema.validate(data, schema)
    data["items"][0]["titel"] = "typo"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


def test_published_schema_file_is_current() -> None:
    on_disk = json.loads((REPO / "docs" / "issue.schema.json").read_text(encoding="utf-8"))
    assert on_disk == json_schema(), "run: newsletter schema > docs/issue.schema.json"


def test_reserved_substitution_marks_are_errors(tmp_path: Path) -> None:
    text = GOOD.replace("Some text.", "Dear [[nl:name]], hello").replace(
        "https://example.org/a", "https://example.org/[[nl:view_url]]")
    result = check_file(write(tmp_path, text))
    found = [str(d) for d in result.errors]
    assert len(found) == 2
    assert found[0].startswith(f"{tmp_path / 'issue.yaml'}:6:10: items[1].url: contains '[[nl:'")
    assert "items[1].summary: contains '[[nl:'" in found[1]
    with pytest.raises(IssueFileError):
        load_issue(tmp_path / "issue.yaml")


def test_subject_and_titles_must_be_one_line(tmp_path: Path) -> None:
    text = GOOD.replace("subject: Hello", "subject: |\n  Hello\n  there").replace(
        "  - title: First", "  - title: |\n      First\n      line")
    found = messages(write(tmp_path, text))
    assert any(": subject: must be a single line" in line for line in found), found
    assert any(": items[1].title: must be a single line" in line for line in found), found
    assert len(found) == 2


def test_the_full_example_in_the_docs_is_a_valid_issue(tmp_path: Path) -> None:
    doc = (REPO / "docs" / "issue-format.md").read_text(encoding="utf-8")
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert "items:" in example and "image_alt:" in example
    result = check_file(write(tmp_path, example))
    assert result.errors == [], [str(d) for d in result.errors]
    assert len(result.issue.items) == 2
