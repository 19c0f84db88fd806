"""issue_writer: fields changed in place; every other byte of the file stays as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from newsletter.errors import NewsletterError
from newsletter.issue import check_file, plain_data
from newsletter.issue_writer import (
    TOP_FIELDS,
    FileChanged,
    IssueEdit,
    ItemEdit,
    text_hash,
    update_issue_file,
    update_issue_text,
)

SAMPLE = Path(__file__).resolve().parent.parent / "issues" / "2021-02-01.yaml"


def as_form(text: str) -> IssueEdit:
    """The issue as the studio's form would send it back unchanged."""
    data = plain_data(YAML(typ="rt").load(text))
    return IssueEdit(
        {name: str(data.get(name) or "") for name in TOP_FIELDS},
        [ItemEdit(i, {k: str(v) for k, v in item.items()}) for i, item in enumerate(data["items"])],
    )


def changed_lines(before: str, after: str) -> tuple[set[str], set[str]]:
    return set(before.splitlines()) - set(after.splitlines()), \
        set(after.splitlines()) - set(before.splitlines())


def test_an_unchanged_form_leaves_the_file_byte_for_byte() -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    assert update_issue_text(text, as_form(text)) == text
    crlf = text.replace("\n", "\r\n")
    assert update_issue_text(crlf, as_form(crlf)) == crlf


def test_one_changed_field_changes_one_line_and_keeps_comments() -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    edit = as_form(text)
    edit.items[0].fields["url"] = "https://example.org/new"
    new = update_issue_text(text, edit)
    gone, added = changed_lines(text, new)
    assert gone == {"    url: https://theintercept.com/2021/01/29/china-uyghur-muslim-surveillance-"
                    "police/"}
    assert added == {"    url: https://example.org/new"}
    assert "# The brief says 2020" in new


def test_new_cleared_and_multiline_fields() -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    edit = as_form(text)
    edit.fields["subject"] = "Colons: quotes \" and # hashes"
    edit.fields["intro"] = "Line one\n\nLine two"
    edit.items[1].fields["source"] = "WUC"
    edit.items[2].fields["photo_credit"] = ""
    edit.items[2].fields["published"] = "2021-01-14"
    new = update_issue_text(text, edit)
    data = plain_data(YAML(typ="rt").load(new))
    assert data["subject"] == "Colons: quotes \" and # hashes"
    assert data["intro"] == "Line one\n\nLine two\n"
    assert data["items"][1]["source"] == "WUC"
    assert "photo_credit" not in data["items"][2]
    assert str(data["items"][2]["published"]) == "2021-01-14"
    # The source goes after the url, as `newsletter new` orders fields.
    lines = new.splitlines()
    assert lines[lines.index("    source: WUC") - 1].startswith("    url: https://news.example")


def test_items_are_removed_reordered_and_added_as_whole_blocks(tmp_path: Path) -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    edit = as_form(text)
    third, first = edit.items[2], edit.items[0]
    edit.items = [third, first, ItemEdit(None, {"title": "Fresh", "url": "https://x.org/a",
                                                "summary": "Two\nlines", "section": ""})]
    new = update_issue_text(text, edit)
    path = tmp_path / "2021-02-01.yaml"
    path.write_text(new, encoding="utf-8")
    result = check_file(path)
    assert result.issue is not None and not result.errors
    assert [i.title for i in result.issue.items] == [
        "US Solar Companies Rely On Materials From Xinjiang, Where Forced Labor Is Rampant",
        "Leaked Chinese Police Database Reveals Mass Surveillance of Uyghurs", "Fresh"]
    assert "    # The brief says 2020; `newsletter check` asks whether the year is right." in new
    assert new.startswith(text[: text.index("items:")])


def test_an_empty_items_list_gets_its_first_item() -> None:
    text = "date: 2026-01-05\nsubject: Hi # a comment\nitems:\n"
    new = update_issue_text(text, IssueEdit({"subject": "Hi"}, [ItemEdit(None, {"title": "A"})]))
    assert new.startswith("date: 2026-01-05\nsubject: Hi # a comment\nitems:\n  - title: A\n")


def test_a_file_changed_on_disk_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "issue.yaml"
    path.write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    loaded = text_hash(path.read_bytes())
    edit = as_form(path.read_text(encoding="utf-8"))
    path.write_text(path.read_text(encoding="utf-8") + "# edited elsewhere\n", encoding="utf-8")
    edit.fields["subject"] = "Mine"
    with pytest.raises(FileChanged) as caught:
        update_issue_file(path, edit, loaded)
    assert caught.value.text.endswith("# edited elsewhere\n")
    assert "Mine" not in path.read_text(encoding="utf-8")
    new_hash = update_issue_file(path, edit, text_hash(path.read_bytes()))
    assert new_hash == text_hash(path.read_bytes()) and "subject: Mine" in path.read_text()


def test_a_file_that_is_not_an_issue_is_refused() -> None:
    with pytest.raises(NewsletterError):
        update_issue_text("- just\n- a list\n", IssueEdit({"subject": "x"}))


def test_values_yaml_versions_read_differently_are_left_alone() -> None:
    # YAML 1.1 (libyaml) reads `no` as false and 010 as 8; the checker reads YAML 1.2.
    text = "date: 2026-01-05\nnumber: 010\nsubject: no\nitems:\n  - title: on\n    url: x\n"
    edit = IssueEdit({"subject": "no"}, [ItemEdit(0, {"title": "on", "url": "y"})])
    assert update_issue_text(text, edit) == text.replace("url: x", "url: y")
