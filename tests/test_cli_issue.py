"""The issue commands, through the real `newsletter` command line."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.pipeline import new_issue
from newsletter.project import Project, find_project


def run(*args: str, cwd: Path | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_check_reports_and_exits(sample_project: Path) -> None:
    code, out = run("check", "issues/2021-02-01.yaml")
    assert code == 0
    assert "0 error(s), 2 warning(s)" in out
    bad = sample_project / "issues" / "2021-02-08.yaml"
    bad.write_text("date: 2021-02-08\nsubjet: x\nitems: []\n", encoding="utf-8")
    code, out = run("check", "issues/2021-02-01.yaml", str(bad))
    assert code == 1
    assert f"{bad}:2:1: subjet: unknown field; did you mean 'subject'?" in out
    assert f"{bad}:3:8: items: needs at least one item" in out
    assert "Traceback" not in out


def test_check_warns_when_gmail_would_clip(sample_project: Path) -> None:
    long = sample_project / "issues" / "2021-02-08.yaml"
    items = "".join(
        f"  - title: Story {n}\n    url: https://example.org/{n}\n    source: Example\n"
        f"    summary: {'A long sentence about the news. ' * 20}\n"
        for n in range(60)
    )
    long.write_text(f"date: 2021-02-08\nsubject: Long\npreheader: p\nitems:\n{items}",
                    encoding="utf-8")
    code, out = run("check", str(long))
    assert code == 0
    assert "Gmail clips messages over 102 KB" in out


def test_check_outside_a_project_says_what_to_do(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["check", "x.yaml"])
    assert result.exit_code == 1
    assert "No newsletter.toml" in result.output
    assert "newsletter init DIR" in result.output


def test_bad_config_names_the_line(sample_project: Path) -> None:
    config = sample_project / "newsletter.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace('primary_color = "#1d4e89"',
                                                   'primary_color = "blue"\nlogo_size = 3'),
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["build", "issues/2021-02-01.yaml"])
    assert result.exit_code == 1
    assert (f"{config}:26: [brand] primary_color: write a colour code: # and six digits or "
            'letters a-f, like #1d4e89 (it says "blue")') in result.output
    assert f"{config}:27: [brand] logo_size: unknown setting" in result.output


def test_build_writes_html_text_and_a_complete_eml(sample_project: Path) -> None:
    code, out = run("build", "issues/2021-02-01.yaml", "-o", "out")
    assert code == 0, out
    folder = sample_project / "out"
    assert sorted(p.name for p in folder.iterdir()) == [
        "2021-02-01.eml", "2021-02-01.html", "2021-02-01.txt"]
    message = email.message_from_bytes((folder / "2021-02-01.eml").read_bytes(),
                                       policy=email.policy.default)
    assert message.get_content_type() == "multipart/alternative"
    for header in ("Date", "Message-ID", "From", "Subject"):
        assert message[header], header
    assert message["From"].addresses[0].addr_spec == "brief@example.org"
    assert message["Subject"].startswith("Weekly Brief:")
    parts = {  # lines end in CRLF on the wire
        part.get_content_type(): part.get_content().replace("\r\n", "\n")
        for part in message.iter_parts()
    }
    assert parts["text/plain"] == (folder / "2021-02-01.txt").read_text(encoding="utf-8")
    assert parts["text/html"] == (folder / "2021-02-01.html").read_text(encoding="utf-8")
    assert "Ürümqi" in parts["text/plain"]


def test_build_refuses_an_invalid_issue_and_writes_nothing(sample_project: Path) -> None:
    bad = sample_project / "issues" / "bad.yaml"
    bad.write_text("date: 2021-02-08\nsubject: x\nitems:\n  - title: t\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["build", str(bad), "-o", "out"])
    assert result.exit_code == 1
    assert "items[1].url: required field is missing" in result.output
    assert "newsletter check" in result.output
    assert not (sample_project / "out").exists()


def test_new_scaffolds_the_next_issue(sample_project: Path) -> None:
    code, out = run("new", "--date", "2021-02-08")
    assert code == 0, out
    created = sample_project / "issues" / "2021-02-08.yaml"
    assert created.exists()
    text = created.read_text(encoding="utf-8")
    assert "date: 2021-02-08" in text and "number: 2" in text
    code, out = run("check", str(created))
    assert code == 0 and "placeholder 'TODO'" in out
    code, out = run("new", "--date", "2021-02-15")
    assert (sample_project / "issues" / "2021-02-15.yaml").exists()
    assert "number: 3" in (sample_project / "issues" / "2021-02-15.yaml").read_text()
    code, out = run("new", "--date", "2021-02-15")
    assert code == 1 and "already exists" in out


def test_new_starts_from_today_not_from_the_last_issue(sample_project: Path) -> None:
    """The last issue is from 2021: a week after it would be a date long past."""
    project = Project(sample_project)
    created = new_issue(project, today=dt.date(2030, 1, 7))
    assert created.name == "2030-01-07.yaml"
    assert "date: 2030-01-07" in created.read_text(encoding="utf-8")
    code, out = run("new")
    today = dt.datetime.now(project.config.zone).date()
    assert code == 0 and (sample_project / "issues" / f"{today.isoformat()}.yaml").exists()


def test_new_continues_an_explicit_number(sample_project: Path) -> None:
    path = sample_project / "issues" / "2021-02-01.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("date: 2021-02-01",
                                                             "date: 2021-02-01\nnumber: 57"))
    created = new_issue(Project(sample_project))
    assert "number: 58" in created.read_text(encoding="utf-8")


def test_schema_prints_json_schema(sample_project: Path) -> None:
    code, out = run("schema")
    schema = json.loads(out)
    assert schema["additionalProperties"] is False
    assert {"date", "subject", "items"} <= set(schema["required"])


def test_init_creates_a_working_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = run("init", "my-brief", "--name", "My Brief")
    assert code == 0, out
    root = tmp_path / "my-brief"
    assert not (root / "templates").exists()  # the package's templates, with later fixes
    assert "subscribers/*.db" in (root / ".gitignore").read_text().splitlines()
    monkeypatch.chdir(root / "issues")  # found from a subfolder
    project = find_project()
    assert project.root == root and project.config.name == "My Brief"
    (example,) = project.issue_files()
    code, out = run("build", str(example), "-o", str(root / "out"))
    assert code == 0, out
    code, out = run("init", str(root))
    assert code == 1 and "already exists" in out


def test_templates_lists_and_copies_defaults(sample_project: Path) -> None:
    code, out = run("templates")
    assert code == 0 and "partials/footer.mjml.j2" in out and "default" in out
    code, out = run("templates", "copy", "partials/footer.mjml.j2")
    assert code == 0
    copied = sample_project / "templates" / "partials" / "footer.mjml.j2"
    assert "postal_address" in copied.read_text(encoding="utf-8")
    code, out = run("templates")
    assert "templates/partials/footer.mjml.j2" in out
    code, out = run("templates", "copy", "partials/footer.mjml.j2")
    assert code == 1 and "--force" in out
    code, out = run("templates", "copy", "nope.j2")
    assert code == 1 and "newsletter templates" in out


def test_output_names_come_from_the_file_name_not_the_date(sample_project: Path) -> None:
    special = sample_project / "issues" / "special-edition.yaml"
    special.write_text((sample_project / "issues" / "2021-02-01.yaml").read_text(
        encoding="utf-8").replace("date: 2021-02-01", "date: 2021-02-03"), encoding="utf-8")
    code, out = run("build", str(special), "-o", "out")
    assert code == 0, out
    assert sorted(p.name for p in (sample_project / "out").iterdir()) == [
        "special-edition.eml", "special-edition.html", "special-edition.txt"]
    html = (sample_project / "out" / "special-edition.html").read_text(encoding="utf-8")
    assert 'href="https://news.example.org/issues/special-edition/"' in html
