"""The files docs/operations.md ships in docs/deploy/: systemd units, timers, cron, proxies."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from newsletter.web.context import Limits

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "docs" / "deploy"
UNITS = sorted([*DEPLOY.glob("*.service"), *DEPLOY.glob("*.timer")])
INSTALLED = "/srv/newsletter/venv/bin/newsletter"


def _verify(folder: Path, names: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", "verify", "--man=no", *names], cwd=folder,
                          capture_output=True, text=True, timeout=120)


def _copies(tmp_path: Path) -> list[str]:
    """The units, with the installed command replaced by this checkout's (verify runs it)."""
    command = str(Path(sys.executable).parent / "newsletter")
    for unit in UNITS:
        (tmp_path / unit.name).write_text(unit.read_text().replace(INSTALLED, command))
    return [unit.name for unit in UNITS]


@pytest.fixture
def systemd_analyze() -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")


def test_units_and_timers_pass_systemd_analyze_verify(systemd_analyze: None,
                                                      tmp_path: Path) -> None:
    assert {u.name for u in UNITS} >= {"newsletter.service", "newsletter-sync.service",
                                       "newsletter-sync.timer", "newsletter-archive.service",
                                       "newsletter-archive.timer"}
    checked = _verify(tmp_path, _copies(tmp_path))
    assert checked.returncode == 0 and not checked.stderr.strip(), checked.stderr


def test_the_verify_check_can_fail(systemd_analyze: None, tmp_path: Path) -> None:
    names = _copies(tmp_path)
    broken = tmp_path / "newsletter.service"
    broken.write_text(broken.read_text().replace("ExecStart=", "ExecStart=no-such-program "))
    assert _verify(tmp_path, names).returncode != 0


def test_every_unit_runs_the_installed_command_with_the_environment_file() -> None:
    for unit in (u for u in UNITS if u.suffix == ".service"):
        text = unit.read_text()
        assert f"ExecStart={INSTALLED} " in text, unit.name
        assert "EnvironmentFile=/etc/newsletter/newsletter.env" in text, unit.name
        assert "WorkingDirectory=/srv/newsletter/project" in text, unit.name
    assert "--workers 2" in (DEPLOY / "newsletter.service").read_text()


def test_the_cron_lines_load_the_environment_and_the_project() -> None:
    jobs = [line for line in (DEPLOY / "crontab").read_text().splitlines()
            if line and line[0].isdigit()]
    assert len(jobs) == 2
    for job in jobs:
        assert "cd /srv/newsletter/project &&" in job
        assert "set -a && . /etc/newsletter/newsletter.env && set +a" in job
        assert INSTALLED in job
    env = (DEPLOY / "newsletter.env").read_text()
    for name in ("NEWSLETTER_SECRET", "NEWSLETTER_DATABASE_URL", "SENDGRID_API_KEY",
                 "SENDGRID_WEBHOOK_PUBLIC_KEY"):
        assert re.search(rf"^{name}=\S+$", env, re.M), name


def _megabytes(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)\s*([kKmM])B?", text.strip()).groups()  # type: ignore[union-attr]
    return int(number) * (1024 if unit.lower() == "k" else 1024 * 1024)


def test_proxy_body_limits_match_the_apps() -> None:
    nginx = re.search(r"client_max_body_size\s+(\w+);", (DEPLOY / "nginx.conf").read_text())
    caddy = re.search(r"max_size\s+(\w+)", (DEPLOY / "Caddyfile").read_text())
    assert nginx and caddy
    assert _megabytes(nginx.group(1)) == Limits().webhook_body
    assert _megabytes(caddy.group(1)) == Limits().webhook_body
