"""`newsletter lists` and `newsletter subscribers ...` against the sample project."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import main


@pytest.fixture
def run(project_database_url: str):
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke


def exported(run, *args: str) -> dict[str, dict[str, str]]:
    out = run("subscribers", "export", *args).output
    return {row["email"]: row for row in csv.DictReader(io.StringIO(out))}


def test_import_the_sample_subscribers_twice(run, sample_project: Path) -> None:
    first = run("subscribers", "import", "subscribers/sample.csv", "--list", "weekly").output
    assert "added" in first and "12" in first
    second = run("subscribers", "import", "subscribers/sample.csv").output  # default list
    assert "unchanged" in second and "12" in second
    rows = exported(run, "--list", "weekly")
    assert len(rows) == 12
    assert rows["carla.garcia@example.org"]["name"] == "Carla García"
    assert rows["carla.garcia@example.org"]["status"] == "subscribed"
    assert set(next(iter(rows.values()))) >= {"email", "name", "status", "created_at"}
    lists = run("lists").output
    assert "weekly" in lists and "12" in lists


def test_add_remove_show_and_status(run, sample_project: Path) -> None:
    run("lists", "create", "events", "--name", "Events", "--double-opt-in",
        "--description", "Invitations to events")
    added = run("subscribers", "add", "Ann@Example.org", "--list", "events", "--name", "Ann")
    assert "Ann@example.org is subscribed to events" in added.output
    run("subscribers", "add", "bob@example.org")  # the default list, weekly
    removed = run("subscribers", "remove", "ann@example.org", "--reason", "asked by phone")
    assert "Unsubscribed ann@example.org from events" in removed.output
    run("subscribers", "set-status", "bob@example.org", "bounced", "--reason", "550 no user")
    shown = run("subscribers", "show", "ANN@example.org").output
    assert "unsubscribed" in shown and "asked by phone" in shown and "command" in shown
    bob = run("subscribers", "show", "bob@example.org").output
    assert "bounced" in bob and "550 no user" in bob and "(all lists)" in bob
    assert exported(run, "--list", "weekly")["bob@example.org"]["status"] == "bounced"
    assert exported(run, "--list", "weekly", "--recipients-only") == {}
    lists = run("lists").output
    assert "events" in lists and "double" in lists


def test_import_reports_skips_and_writes_rejects(run, sample_project: Path) -> None:
    run("subscribers", "import", "subscribers/sample.csv")
    run("subscribers", "remove", "ann.lee@example.org")
    messy = sample_project / "messy.csv"
    messy.write_text("E-mail;Name\nann.lee@example.org;Ann\nnot-an-address;X\n"
                     "new@example.org;New\n", encoding="cp1252")
    result = run("subscribers", "import", str(messy), "--rejects", "rejects.csv")
    assert "line 2: ann.lee@example.org: skipped: unsubscribed" in result.output.replace("\n", " ")
    assert "line 3: not-an-address" in result.output
    rejects = list(csv.reader((sample_project / "rejects.csv").open(encoding="utf-8")))
    assert [row[0] for row in rejects] == ["line", "2", "3"]
    run("subscribers", "import", str(messy), "--resubscribe")
    assert exported(run)["ann.lee@example.org"]["status"] == "subscribed"


def test_export_to_a_file(run, sample_project: Path) -> None:
    run("subscribers", "import", "subscribers/sample.csv")
    result = run("subscribers", "export", "-o", "out/weekly.csv", "--list", "weekly")
    assert "Wrote 12 rows" in result.output
    with (sample_project / "out" / "weekly.csv").open(encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert header[:3] == ["email", "name", "status"]


def test_errors_are_readable_without_traceback(run, sample_project: Path) -> None:
    result = run("subscribers", "show", "nobody@example.org", ok=False)
    assert result.exit_code == 1
    assert "No subscriber" in result.output and "Traceback" not in result.output
    result = run("subscribers", "import", "subscribers/sample.csv", "--list", "nope", ok=False)
    assert "There is no list 'nope'" in result.output
    assert "newsletter lists create nope" in result.output
    result = run("lists", "create", "Bad Slug", "--name", "x", ok=False)
    assert "cannot be a list slug" in result.output


def test_add_never_silently_resubscribes(run, sample_project: Path) -> None:
    run("subscribers", "add", "cy@example.org")
    run("subscribers", "remove", "cy@example.org", "--reason", "asked by email")
    again = run("subscribers", "add", "cy@example.org", ok=False)
    assert again.exit_code == 1
    assert "cy@example.org unsubscribed from weekly on" in again.output
    assert "--resubscribe" in again.output
    assert exported(run, "--list", "weekly")["cy@example.org"]["status"] == "unsubscribed"
    run("subscribers", "add", "cy@example.org", "--resubscribe")
    assert exported(run, "--list", "weekly")["cy@example.org"]["status"] == "subscribed"


def test_a_bad_database_url_never_shows_its_password(run, sample_project: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", "postgresql//ann:hunter2@db.example/news")
    result = run("lists", ok=False)
    assert result.exit_code == 1 and "Not a database URL" in result.output
    assert "hunter2" not in result.output and "***" in result.output


def test_a_large_import_shows_a_progress_bar(run, sample_project: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    from newsletter.cli import subscribers as cli_subscribers

    big = sample_project / "big.csv"
    big.write_text("email,name\n" + "".join(
        f"person{i}@example.org,Person Number {i}\n" for i in range(15_000)), encoding="utf-8")
    screen = io.StringIO()
    monkeypatch.setattr(cli_subscribers, "console",
                        Console(file=screen, force_terminal=True, width=120))
    run("subscribers", "import", str(big), "--list", "weekly")
    shown = screen.getvalue()
    assert "Importing big.csv" in shown  # the bar (transient: drawn, then cleared)
    assert "15,000" in shown  # then the summary


def test_export_for_excel_has_a_bom_and_xlsx_round_trips(run, sample_project: Path) -> None:
    run("subscribers", "add", "mu@example.de", "--list", "weekly", "--name", "München 北京")
    run("subscribers", "export", "-o", "out/excel.csv", "--list", "weekly", "--excel")
    raw = (sample_project / "out" / "excel.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and "München 北京".encode() in raw
    result = run("subscribers", "export", "-o", "out/weekly.xlsx", "--list", "weekly")
    assert "Wrote 1 rows" in result.output
    run("lists", "create", "copy", "--name", "Copy")
    for name in ("excel.csv", "weekly.xlsx"):
        out = run("subscribers", "import", f"out/{name}", "--list", "copy").output
        assert "Traceback" not in out and "rename" not in out.lower()
    rows = exported(run, "--list", "copy")
    assert rows["mu@example.de"]["name"] == "München 北京"
