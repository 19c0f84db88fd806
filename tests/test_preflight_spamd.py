"""The spam check through spamc, with a real spamd started by the test (NEWSLETTER_SPAMD)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.preflight import spam
from newsletter.preflight.message import Subject
from newsletter.preflight.runner import prepare
from newsletter.project import Project
from tests.preflight_helpers import spamd_binary, spamd_server
from tests.servers import free_port
from tests.tools import missing, require_binary

ISSUE = Path("issues/2021-02-01.yaml")


@pytest.fixture(scope="module")
def spamd() -> Iterator[str]:
    found = spamd_binary()
    if found is None:
        missing("spamd", "sudo apt-get install -y spamd")
    assert found is not None
    require_binary("spamc", "sudo apt-get install -y spamc")
    with spamd_server(found) as address:
        yield address


@pytest.fixture
def subject(sample_project: Path) -> Subject:
    return prepare(Project(sample_project), sample_project / ISSUE)


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every command the spam check runs (it still runs them)."""
    ran: list[list[str]] = []
    real = subprocess.run

    def recording(command: list[str], **kwargs):  # type: ignore[no-untyped-def]
        ran.append(list(command))
        return real(command, **kwargs)

    monkeypatch.setattr(spam.subprocess, "run", recording)
    return ran


def test_spamc_reports_the_same_rules_as_spamassassin(
        spamd: str, subject: Subject, commands: list[list[str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    spamassassin = require_binary("spamassassin", "sudo apt-get install -y spamassassin")
    monkeypatch.setenv(spam.SPAMD_ENV, spamd)
    through_spamd = spam.check_spam(subject)
    assert [command[0] for command in commands] == ["spamc"]
    assert commands[0][commands[0].index("-p") + 1] == spamd.rsplit(":", 1)[1]
    assert not through_spamd.skipped, through_spamd.skipped

    cold = subprocess.run([spamassassin, "-L", "-t", spam.NO_LEARNING], input=subject.eml,
                          capture_output=True,
                          timeout=120, check=True)
    parsed = spam.parse_report(cold.stdout.decode("utf-8", "replace"))
    assert parsed is not None
    score, required, rules = parsed
    assert rules, "the sample message fires no rule at all: nothing compared"
    assert through_spamd.summary == f"{score:g} points (spam from {required:g})"
    assert sorted((f.item, f.field) for f in through_spamd.findings) == sorted(
        (rule.name, f"{rule.points:+g} points") for rule in rules)


def test_an_unreachable_spamd_is_said_plainly(subject: Subject,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    require_binary("spamc", "sudo apt-get install -y spamc")
    monkeypatch.setenv(spam.SPAMD_ENV, f"127.0.0.1:{free_port()}")  # nothing listens there
    result = spam.check_spam(subject)
    assert result.findings == []
    assert f"({spam.SPAMD_ENV}) did not answer" in result.skipped
    assert "start spamd there" in result.skipped and "Traceback" not in result.skipped


def test_without_spamc_a_configured_spamd_falls_back_to_spamassassin(
        subject: Subject, commands: list[list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(spam.SPAMD_ENV, "127.0.0.1:783")
    monkeypatch.setattr(spam.shutil, "which",
                        lambda name: None if name == "spamc" else f"/usr/bin/{name}")
    monkeypatch.setattr(spam.subprocess, "run", lambda command, **_: commands.append(command)
                        or subprocess.CompletedProcess(command, 0, b"", b""))
    spam.check_spam(subject)
    assert commands == [["/usr/bin/spamassassin", "-L", "-t", spam.NO_LEARNING]]


def test_a_spam_check_teaches_the_bayes_filter_nothing(
        subject: Subject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # SpamAssassin learns a low-scoring email as ham into ~/.spamassassin on its own
    # (bayes_auto_learn): preflight must not file the newsletter as good mail there.
    require_binary("spamassassin", "sudo apt-get install -y spamassassin")
    monkeypatch.delenv(spam.SPAMD_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    result = spam.check_spam(subject)
    assert not result.skipped and result.summary, result.skipped
    assert sorted(p.name for p in tmp_path.rglob("bayes_*")) == []
