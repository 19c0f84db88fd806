"""`newsletter --help` starts at once: commands load only when they run."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from newsletter.cli import COMMAND_TABLE, main

HEAVY = ("sqlalchemy", "starlette", "lxml", "premailer", "mjml", "extruct", "matplotlib")


def test_the_table_lists_every_command_with_its_own_help() -> None:
    modules = {module for module, _help in COMMAND_TABLE.values()}
    commands: dict[str, click.Command] = {}
    for module in modules:
        for command in importlib.import_module(f"newsletter.cli.{module}").COMMANDS:
            commands[command.name or ""] = command
    assert set(commands) == set(COMMAND_TABLE)
    for name, (module, help_line) in COMMAND_TABLE.items():
        assert commands[name].get_short_help_str(limit=150) == help_line, name
        assert commands[name] in importlib.import_module(f"newsletter.cli.{module}").COMMANDS


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_help_imports_no_heavy_library(args: list[str]) -> None:
    code = (
        "import sys\nfrom newsletter.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout


def test_a_command_still_runs_through_the_lazy_table() -> None:
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0 and '"subject"' in result.output


def test_check_imports_neither_the_css_inliner_nor_the_database(tmp_path) -> None:
    # The footer and size rules read the email compiled without inlining its CSS
    # (pipeline.check_issue); the database is never opened. mjml itself is light. ruamel
    # reads a file only when libyaml refused it.
    code = (
        "import sys\nfrom newsletter.cli import main\n"
        "try:\n    main(['check', 'issues/2021-02-01.yaml'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('sqlalchemy', 'premailer', 'lxml', 'cssutils', 'alembic', "
        "'psycopg', 'starlette', 'ruamel') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True, cwd=root)
    assert "1 file(s): 0 error(s)" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout


def test_report_loads_no_transport_until_it_needs_sendgrid() -> None:
    # A report with webhook events never talks to SendGrid: the sending side (transports,
    # the sendgrid package) stays unloaded; delivery.models alone is enough.
    code = ("import sys, newsletter.cli.report\n"
            "print(sorted(m for m in ('sendgrid', 'newsletter.delivery.transports', "
            "'newsletter.delivery.sendgrid_client', 'newsletter.delivery.single') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_an_offline_preflight_loads_no_database_network_or_sending_library() -> None:
    # --offline: no links, pictures or DNS (httpx, Pillow, dnspython, asyncio), and
    # preflight builds the message with the outbox transport alone: the SMTP transport
    # used to pull in the database layer (SQLAlchemy) through its delivery records.
    code = (
        "import sys\nfrom newsletter.cli import main\n"
        "try:\n    main(['preflight', 'issues/2021-02-01.yaml', '--offline'])\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in ('sqlalchemy', 'httpx', 'PIL', 'dns', 'asyncio', 'sendgrid', "
        "'newsletter.store', 'newsletter.delivery.messages') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PATH": ""}  # no spamassassin: the spam check says so and skips
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True, cwd=root, env=env)
    assert "not installed" in " ".join(done.stdout.split()), done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
