"""Nothing wrong goes out silently: placeholders, odd dates, a sample identity, a footer
without what the law requires, and a scheduled send's last line (issue 12, items 4-10)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import issue_commands, main
from newsletter.config import load_config
from newsletter.delivery.safety import date_warning, issue_placeholders
from newsletter.issue import load_issue
from newsletter.project import Project, init_project, next_issue_day, placeholder_settings
from tests.plugins.fake_sendgrid import populate

ISSUE = "issues/2021-02-01.yaml"


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# --- 4: placeholders ---------------------------------------------------------------------


@pytest.mark.parametrize("text", ["TODO write the summary", "Lorem ipsum dolor sit amet",
                                  "Quote from TK at the press conference"])
def test_a_send_with_placeholders_is_refused_even_with_yes(sample_project: Path, text: str):
    populate(Project(sample_project), "weekly", 2)
    _replace(sample_project / ISSUE, "preheader: ", f"preheader: {text} ")
    refused = run("send", ISSUE, "--yes")
    assert refused.exit_code == 1
    assert "placeholders" in refused.output and "preheader" in refused.output
    assert "--allow-placeholders" in refused.output
    assert not (sample_project / "outbox").exists()
    allowed = run("send", ISSUE, "--yes", "--allow-placeholders")
    assert allowed.exit_code == 0, allowed.output
    assert "placeholders" in allowed.output  # still said, as a warning
    assert len(list((sample_project / "outbox" / "2021-02-01").iterdir())) == 2


def test_what_new_writes_counts_as_placeholders(sample_project: Path):
    created = run("new", "--date", "2021-02-08")
    assert created.exit_code == 0
    issue = load_issue(sample_project / "issues" / "2021-02-08.yaml")
    found = "\n".join(issue_placeholders(issue))
    for place in ("subject", "preheader", "intro", "items[1].title", "items[1].summary"):
        assert f"{place}:" in found
    assert issue_placeholders(load_issue(sample_project / ISSUE)) == []


def test_ordinary_words_are_not_placeholders(sample_project: Path):
    _replace(sample_project / ISSUE, "preheader: ",
             "preheader: Todo el mundo habla de Stockholm and TikTok. ")
    assert issue_placeholders(load_issue(sample_project / ISSUE)) == []


def test_a_test_send_of_an_unfinished_issue_only_warns(sample_project: Path):
    _replace(sample_project / ISSUE, "preheader: ", "preheader: TODO ")
    result = run("send", ISSUE, "--test", "me@example.org", "--yes")
    assert result.exit_code == 0, result.output
    assert "placeholders" in result.output


# --- 5: the issue's date ------------------------------------------------------------------


def test_date_warnings():
    today = dt.date(2026, 11, 26)
    assert date_warning(today, today) is None
    assert date_warning(today + dt.timedelta(days=7), today) is None
    assert "yesterday" in (date_warning(today - dt.timedelta(days=1), today) or "")
    assert "300 days ago" in (date_warning(today - dt.timedelta(days=300), today) or "")
    assert "8 days after" in (date_warning(today + dt.timedelta(days=8), today) or "")


def test_a_send_of_an_old_issue_says_so(sample_project: Path):
    populate(Project(sample_project), "weekly", 1)
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 0, result.output
    assert "dated 01 February 2021" in result.output and "days ago" in result.output


# --- 6: init asks who the newsletter is from; real sends refuse placeholders --------------


def test_init_without_a_terminal_writes_marked_placeholders(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("init", "brief")
    assert result.exit_code == 0, result.output
    config = load_config(tmp_path / "brief" / "newsletter.toml")
    assert config.postal_address.startswith("CHANGE ME")
    assert "Example Rights Network" not in (tmp_path / "brief" / "newsletter.toml").read_text()
    assert "postal_address is still a placeholder" in result.output
    assert len(placeholder_settings(config)) == 4  # the name comes from the folder


def test_init_takes_flags_for_scripts(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("init", "brief", "--name", "Rights Brief", "--address", "Street 1, Berlin",
                 "--description", "News on Mondays.", "--from-name", "Rights Brief",
                 "--from-email", "news@rights-brief.org")
    assert result.exit_code == 0, result.output
    config = Project(tmp_path / "brief").config
    assert (config.name, config.postal_address, config.description) == (
        "Rights Brief", "Street 1, Berlin", "News on Mondays.")
    assert (config.sender.from_name, config.sender.from_email) == (
        "Rights Brief", "news@rights-brief.org")
    assert placeholder_settings(config) == []
    assert "Still to fill in" not in result.output


def test_init_asks_at_a_terminal(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(issue_commands, "_at_terminal", lambda: True)
    answers = "Hauptstr. 1, 10115 Berlin\nWeekly news.\nThe Brief\nnot an address\n" \
        "brief@the-brief.org\n"
    result = run("init", "the-brief", "--name", "The Brief", input=answers)
    assert result.exit_code == 0, result.output
    assert "postal address" in result.output  # the question was asked
    assert "Newsletter name" not in result.output  # given as a flag
    assert "@-sign" in result.output  # a wrong address is asked again
    config = Project(tmp_path / "the-brief").config
    assert config.name == "The Brief" and config.postal_address == "Hauptstr. 1, 10115 Berlin"
    assert config.sender.from_email == "brief@the-brief.org"


def test_the_sample_identity_is_a_placeholder(sample_project: Path):
    problems = "\n".join(placeholder_settings(Project(sample_project).config))
    assert "postal_address is still the sample" in problems
    assert "from_email" in problems


def test_a_real_send_refuses_placeholder_settings_the_outbox_warns(sample_project: Path,
                                                                   fake_sendgrid, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET", "test-secret-0123456789-abcdefghij")
    populate(Project(sample_project), "weekly", 2)
    refused = run("send", ISSUE, "--transport", "sendgrid", "--yes")
    assert refused.exit_code == 1
    assert "postal_address" in refused.output and "newsletter.toml" in refused.output
    assert fake_sendgrid.accepted == []
    outbox = run("send", ISSUE, "--yes")  # make demo: the outbox only warns
    assert outbox.exit_code == 0, outbox.output
    assert "postal_address" in outbox.output


# --- 7: init's example is a draft, dated the next issue day ------------------------------


def test_init_example_is_a_draft_dated_the_next_monday(tmp_path: Path):
    project = init_project(tmp_path / "brief", today=dt.date(2026, 11, 26))  # a Thursday
    (example,) = project.issue_files()
    assert example.name == "2026-11-30.yaml"
    assert load_issue(example).model.draft is True
    assert next_issue_day(dt.date(2026, 11, 30)) == dt.date(2026, 12, 7)


# --- 8: the footer the law requires -------------------------------------------------------


@pytest.mark.parametrize("dropped", ["{{ person.unsubscribe_url }}", "{{ config.postal_address }}"])
def test_a_template_without_unsubscribe_link_or_address_is_refused(sample_project: Path,
                                                                    dropped: str):
    assert run("templates", "copy", "partials/footer.mjml.j2", "email.txt.j2").exit_code == 0
    for name in ("partials/footer.mjml.j2", "email.txt.j2"):
        _replace(sample_project / "templates" / name, dropped, "")
    what = "unsubscribe link" if "unsubscribe" in dropped else "postal address"
    checked = run("check", ISSUE)
    assert checked.exit_code == 1 and what in checked.output
    assert "HTML email" in checked.output and "text email" in checked.output
    built = run("build", ISSUE, "-o", "out")
    assert what in built.output
    populate(Project(sample_project), "weekly", 1)
    sent = run("send", ISSUE, "--yes")
    assert sent.exit_code == 1 and what in sent.output
    assert not (sample_project / "outbox").exists()


def test_a_changed_footer_that_keeps_both_passes(sample_project: Path):
    assert run("templates", "copy", "partials/footer.mjml.j2").exit_code == 0
    footer = sample_project / "templates" / "partials" / "footer.mjml.j2"
    _replace(footer, "<p>{{ config.postal_address }}</p>",
             "<p><strong>{{ config.postal_address | upper }}</strong></p>")
    assert run("check", ISSUE).exit_code == 0


# --- 10: a scheduled send says when ------------------------------------------------------


def test_a_scheduled_send_ends_with_scheduled_for(send_project, fake_sendgrid):
    when = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    result = run("send", ISSUE, "--list", "weekly", "--transport", "sendgrid", "--at",
                 f"{when:%Y-%m-%d %H:%M} UTC", "--yes")
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()
    assert any(line.startswith(f"Scheduled for {when:%Y-%m-%d %H:%M} UTC") for line in last)
    assert "went to every recipient" not in result.output
