"""The "small things seen" of issue 12: status times, check from outside the project, a
busy preview port, set-status in any case, remove of an unknown address."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.delivery.status import campaigns_status
from newsletter.errors import NewsletterError
from newsletter.preview import listening_socket
from newsletter.project import Project, default_templates_dir
from tests.plugins.fake_sendgrid import populate

ISSUE = "issues/2021-02-01.yaml"


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_status_shows_when_each_send_started_and_finished(sample_project: Path):
    populate(Project(sample_project), "weekly", 2)
    assert run("send", ISSUE, "--yes").exit_code == 0
    status = run("status")
    (item,) = campaigns_status(Project(sample_project))
    started, finished = item.campaign.created_at, item.campaign.finished_at
    assert finished is not None
    shown = f"{finished:%H:%M}" if finished.date() == started.date() \
        else f"{finished:%Y-%m-%d %H:%M}"
    assert (f"2021-02-01 to 'weekly': started {started:%Y-%m-%d %H:%M}, finished {shown} "
            "(UTC)") in status.output


def test_check_finds_the_project_from_the_file(sample_project: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch):
    """From another project, a file of this one is checked with this one's templates."""
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)  # no newsletter.toml here or above
    result = run("check", str(Path("..") / "sample" / ISSUE))
    assert result.exit_code == 0, result.output
    assert "0 error(s)" in result.output
    # With a changed footer in that project, its own template is the one checked.
    partials = sample_project / "templates" / "partials"
    partials.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(default_templates_dir() / "partials" / "footer.mjml.j2",
                    partials / "footer.mjml.j2")
    footer = partials / "footer.mjml.j2"
    footer.write_text(footer.read_text().replace("{{ config.postal_address }}", ""))
    result = run("check", str(Path("..") / "sample" / ISSUE))
    assert result.exit_code == 1 and "postal address" in result.output


def test_a_busy_preview_port_gives_the_next_free_one():
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        sock = listening_socket("127.0.0.1", port, tries=50)
        try:
            assert sock.getsockname()[1] > port
        finally:
            sock.close()
        with pytest.raises(NewsletterError, match="in use"):
            listening_socket("127.0.0.1", port, tries=1)
    finally:
        busy.close()


def test_set_status_accepts_any_letter_case(sample_project: Path):
    result = run("subscribers", "set-status", "ann@example.org", "BlockListed")
    assert result.exit_code == 0, result.output
    assert "is now blocklisted" in result.output


def test_removing_an_unknown_address_does_not_suggest_adding_it(sample_project: Path):
    result = run("subscribers", "remove", "nobody@example.org")
    assert result.exit_code == 1
    assert "subscribers add" not in result.output
    assert "nothing to remove" in result.output and "blocklisted" in result.output
