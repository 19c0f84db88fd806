"""What mailbox providers look at: SpamAssassin's score of the exact outbox message,
List-Id and Feedback-ID on bulk mail, List-Unsubscribe folding, which transactional
messages offer one-click unsubscribe, and the first-name greeting."""

from __future__ import annotations

import email
import email.policy
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.config import parse_config
from newsletter.delivery import send_one
from newsletter.delivery.requests import RequestBuilder
from newsletter.errors import ConfigError
from newsletter.issue import load_issue
from newsletter.personalization import TEXT_TOKENS, first_name, greeting_line
from newsletter.project import Project
from newsletter.render import render_email

from .tools import require_binary

ISSUE = "issues/2021-02-01.yaml"
MAX_SPAM_SCORE = 0.5
SECRET = "a-test-secret-of-at-least-32-characters!"


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def outbox(sample_project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample issue sent to the sample subscribers through the outbox."""
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    run("subscribers", "import", "subscribers/sample.csv", "--list", "weekly")
    run("send", ISSUE, "--list", "weekly", "--yes")
    return sample_project / "outbox" / "2021-02-01"


def read_eml(path: Path) -> email.message.EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def spam_score(message: Path, home: Path) -> tuple[float, str]:
    """(score, report) from `spamassassin -L -t`: local rules only, no network."""
    binary = require_binary("spamassassin", "sudo apt-get install -y spamassassin")
    home.mkdir(exist_ok=True)
    done = subprocess.run(
        [binary, "-L", "-t", "-p", str(home / "user_prefs")],
        input=message.read_bytes(), capture_output=True, timeout=120, check=False,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    )
    report = done.stdout.decode("utf-8", "replace")
    found = re.search(r"Content analysis details:\s+\((-?[\d.]+) points", report)
    assert found, f"no score in SpamAssassin's report:\n{report[-2000:]}\n{done.stderr!r}"
    return float(found.group(1)), report[found.start():]


def test_spamassassin_scores_the_message_a_subscriber_gets_at_zero(
    outbox: Path, tmp_path: Path
) -> None:
    score, report = spam_score(outbox / "ann.lee@example.org.eml", tmp_path / "sa-home")
    assert score <= MAX_SPAM_SCORE, report
    assert "HTML_FONT_LOW_CONTRAST" not in report


def test_the_preheader_is_not_low_contrast_text_and_keeps_its_spacers(
    outbox: Path,
) -> None:
    html = read_eml(outbox / "ann.lee@example.org.eml").get_body(("html",)).get_content()
    preheader = re.search(r'<div class="preheader" style="([^"]*)">([^<]*)</div>', html)
    assert preheader is not None
    style, text = preheader.groups()
    assert "color" not in style and "display:none" in style and "max-height:0" in style
    assert text.startswith("Millions of leaked files")
    assert text.count("\u034f\u200c\u00a0") >= 40  # keeps body text out of the preview


def test_every_bulk_message_carries_list_id_and_feedback_id(outbox: Path) -> None:
    for path in outbox.glob("*.eml"):
        message = read_eml(path)
        assert message["List-Id"] == '"East Turkistan Weekly Brief (weekly)" <weekly.example.org>'
        assert message["Feedback-ID"] == "2021-02-01:weekly:example.org"


def test_sendgrid_requests_carry_the_same_headers(sample_project: Path) -> None:
    project = Project(sample_project)
    issue = load_issue(project.issues_dir / "2021-02-01.yaml", project.issue_files())
    builder = RequestBuilder(project.config, render_email(project, issue, for_sending=True),
                             issue_name=issue.name, list_slug="monthly", secret=b"x" * 32)
    body = builder.body([(1, "a@example.org", "Ann Lee")])
    assert body["headers"] == {
        "List-Id": '"East Turkistan Weekly Brief (monthly)" <monthly.example.org>',
        "Feedback-ID": "2021-02-01:monthly:example.org",
    }


def test_long_list_unsubscribe_is_folded_between_its_addresses(outbox: Path) -> None:
    raw = (outbox / "ann.lee@example.org.eml").read_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    lines = head.split("\r\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("List-Unsubscribe:"))
    assert lines[start].endswith(">,") and lines[start + 1].startswith(" <mailto:")
    assert all(len(line) <= 998 for line in lines)
    assert "=?utf-8?" not in lines[start] + lines[start + 1]
    value = read_eml(outbox / "ann.lee@example.org.eml")["List-Unsubscribe"]
    assert re.fullmatch(r"<https://news\.example\.org/unsubscribe/[^>\s]+>, "
                        r"<mailto:unsubscribe@example\.org\?subject=unsubscribe>", value)


def test_welcome_email_offers_one_click_unsubscribe_and_confirmation_does_not(
    sample_project: Path,
) -> None:
    project = Project(sample_project)
    link = "https://news.example.org/unsubscribe/eyJsIjoid2Vla2x5In0.c2lnbmF0dXJl"
    send_one(project, to="ann@example.org", subject="Please confirm", html="<p>Confirm</p>",
             text="Confirm: https://news.example.org/confirm/T0K")
    send_one(project, to="ann@example.org", subject="Welcome", html="<p>Welcome</p>",
             text=f"Welcome.\n\nYou can unsubscribe at any time: {link}\n")
    confirm, welcome = (read_eml(path) for path in
                        sorted((sample_project / "outbox" / "transactional").glob("*.eml")))
    assert confirm["Subject"] == "Please confirm"
    assert confirm["List-Unsubscribe"] is None and confirm["List-Unsubscribe-Post"] is None
    assert welcome["List-Unsubscribe"] == (
        f"<{link}>, <mailto:unsubscribe@example.org?subject=unsubscribe>")
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


# --- the greeting --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "given", "expected"), [
    ("Ann Lee", None, "Ann"),
    ("  Bob   Okafor ", None, "Bob"),
    ("Dr. Ann Lee", None, "Ann"),
    ("Cher", None, "Cher"),
    ("Ann Lee", "Annie", "Annie"),
    ("Lee, Ann", None, ""),  # "Family, Given": the first word is the family name
    ("王小明", None, ""),  # Chinese: family name first
    ("山田 太郎", None, ""),  # Japanese
    ("김민준", None, ""),  # Korean (Hangul)
    ("山田 太郎", "太郎", "太郎"),  # an explicit first_name always wins
    ("", None, ""),
])
def test_first_name_rule(name: str, given: str | None, expected: str) -> None:
    assert first_name(name, given) == expected


def test_greeting_falls_back_to_the_configured_greeting() -> None:
    assert greeting_line("Hello", "Ann Lee") == "Hello Ann"
    assert greeting_line("Hallo", "王小明") == "Hallo"
    assert greeting_line("Hello", "") == "Hello"


def test_outbox_greets_by_first_name(outbox: Path) -> None:
    text = read_eml(outbox / "ann.lee@example.org.eml").get_body(("plain",)).get_content()
    html = read_eml(outbox / "ann.lee@example.org.eml").get_body(("html",)).get_content()
    assert "Hello Ann," in text and "Hello Ann Lee" not in text
    assert "<p>Hello Ann,</p>" in html or ">Hello Ann,</p>" in html


def test_first_name_attribute_and_configured_greeting_reach_the_request(
    sample_project: Path,
) -> None:
    toml = sample_project / "newsletter.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace(
        'timezone = "Europe/Berlin"', 'timezone = "Europe/Berlin"\ngreeting = "Hallo"'),
        encoding="utf-8")
    project = Project(sample_project)
    assert project.config.greeting == "Hallo"
    issue = load_issue(project.issues_dir / "2021-02-01.yaml", project.issue_files())
    builder = RequestBuilder(project.config, render_email(project, issue, for_sending=True),
                             issue_name=issue.name, list_slug="weekly", secret=b"x" * 32)
    people = builder.personalizations([
        (1, "a@example.org", "Ann Lee", "Annie"), (2, "b@example.org", "김민준"),
        (3, "c@example.org", ""),
    ])
    assert [p["substitutions"][TEXT_TOKENS.greeting] for p in people] == [
        "Hallo Annie", "Hallo", "Hallo"]


def test_a_blank_greeting_is_refused_with_file_and_line(sample_project: Path) -> None:
    text = (sample_project / "newsletter.toml").read_text(encoding="utf-8").replace(
        'timezone = "Europe/Berlin"', 'timezone = "Europe/Berlin"\ngreeting = ""')
    line = text.splitlines().index('greeting = ""') + 1
    with pytest.raises(ConfigError) as caught:
        parse_config(text, Path("newsletter.toml"))
    assert f"newsletter.toml:{line}: [newsletter] greeting: write the word" in caught.value.message
