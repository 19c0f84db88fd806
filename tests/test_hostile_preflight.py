"""Preflight on a machine that is missing things or set up wrongly: each says what is wrong
and what to do, in words, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.preflight import runner
from newsletter.preflight.domain import DNS_SERVER_ENV, check_domain
from newsletter.preflight.links import load_cache
from newsletter.preflight.runner import prepare
from newsletter.project import Project, default_templates_dir
from tests.servers import free_port

ISSUE = Path("issues/2021-02-01.yaml")


def preflight(*args: str):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(main, ["preflight", str(ISSUE), *args], catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


def test_without_spamassassin_the_row_says_how_to_install_it(
        sample_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSLETTER_SPAMD", raising=False)
    monkeypatch.setattr("newsletter.preflight.spam.shutil.which", lambda _name: None)
    result = preflight("--offline", "--json")
    assert result.exit_code == 0, result.output
    assert "SpamAssassin is not installed" in result.output
    assert "sudo apt-get install spamassassin" in result.output


def test_a_dns_server_that_does_not_answer_is_one_warning(
        sample_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DNS_SERVER_ENV, f"127.0.0.1:{free_port()}")  # nothing listens there
    result = check_domain(prepare(Project(sample_project), sample_project / ISSUE))
    assert [f.severity for f in result.findings] == ["warning"]
    finding = result.findings[0]
    assert finding.message.startswith("DNS did not answer (")
    assert finding.message.endswith("the domain was not checked")
    assert "again when online" in finding.fix


def test_a_dns_server_setting_that_is_not_an_address_is_named(
        sample_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DNS_SERVER_ENV, "my resolver:fifty-three")
    result = check_domain(prepare(Project(sample_project), sample_project / ISSUE))
    assert result.skipped.startswith(f"{DNS_SERVER_ENV} is 'my resolver:fifty-three', not an "
                                     "IP address and port (like 127.0.0.1:53)")
    assert f"unset {DNS_SERVER_ENV}" in result.skipped


def test_a_template_that_is_not_text_stops_preflight_in_words(
        sample_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("newsletter.preflight.spam.shutil.which", lambda _name: None)
    copy = sample_project / "templates" / "email.mjml.j2"
    copy.parent.mkdir(exist_ok=True)
    copy.write_bytes((default_templates_dir() / "email.mjml.j2").read_bytes() + b"\xff\xfe")
    result = preflight("--offline")
    assert result.exit_code == 1
    assert "templates/email.mjml.j2: this email template is not saved as UTF-8 text" in \
        result.output.replace("\n", "")
    assert "Save it as UTF-8 text" in result.output and "run the command again" in result.output


def test_a_check_that_breaks_leaves_a_line_and_the_others_run(
        sample_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("newsletter.preflight.spam.shutil.which", lambda _name: None)

    def broken(_subject: object) -> None:
        raise RuntimeError("size table missing")

    monkeypatch.setattr(runner, "check_size", broken)
    result = preflight("--offline", "--json")
    assert "the check could not run (RuntimeError: size table missing)" in result.output
    assert "Run preflight again" in result.output
    assert '"name": "accessibility"' in result.output


def test_a_link_cache_edited_into_nonsense_is_ignored(tmp_path: Path) -> None:
    cache = tmp_path / "link-cache.json"
    now = 1_800_000_000.0
    cache.write_text('{"https://a.example/": {"checked": "yesterday"}, '
                     '"https://b.example/": {"checked": [1]}, '
                     '"https://c.example/": {"checked": 1799999990.0}, "d": 5}',
                     encoding="utf-8")
    assert list(load_cache(cache, now)) == ["https://c.example/"]
    cache.write_bytes(b"\xff\xfe[")
    assert load_cache(cache, now) == {}
