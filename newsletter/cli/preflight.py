"""preflight: check the email a subscriber will receive, before anything is sent."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich import box
from rich.markup import escape
from rich.table import Table

from ..preflight import Report, run_preflight
from ._common import console, current_project

MARKS = {"ok": "[green]✓[/]", "info": "[green]✓[/]", "warning": "[yellow]warning[/]",
         "error": "[bold red]error[/]"}


def report_table(report: Report, *, show_info: bool = False) -> Table:
    """One row per check (✓, warning or error), then one row per finding under it."""
    table = Table(title="Preflight", box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    table.add_column("Check", no_wrap=True)
    table.add_column("Result", no_wrap=True)
    table.add_column("Item", ratio=2, overflow="fold")
    table.add_column("Field", ratio=2, overflow="fold")
    table.add_column("What to do", ratio=5)
    for check in report.checks:
        if check.skipped:
            table.add_row(f"[bold]{check.name}[/]", "[dim]skipped[/]", "", "",
                          escape(check.skipped))
            continue
        table.add_row(f"[bold]{check.name}[/]", MARKS[check.severity], "", "",
                      escape(f"{check.title}: {check.summary}" if check.summary else check.title))
        for finding in check.findings:
            if finding.severity == "info" and not show_info:
                continue
            advice = finding.message + (f". {finding.fix}" if finding.fix else "")
            table.add_row("", MARKS[finding.severity], escape(finding.item),
                          escape(finding.field), escape(advice))
    return table


@click.command("preflight")
@click.argument("issue_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--offline", is_flag=True,
              help="Skip the checks that need the network (links, images, sender domain).")
@click.option("--fail-on", type=click.Choice(["error", "warning"]), default="error",
              show_default=True, help="Exit 1 when anything this bad (or worse) is found.")
@click.option("--details", is_flag=True, help="Also list what is fine but worth knowing.")
def preflight_command(issue_file: Path, as_json: bool, offline: bool, fail_on: str,
                      details: bool) -> None:
    """Check the email ISSUE_FILE makes, as a subscriber will get it.

    \b
    Links (broken, redirected, http), pictures (size, type, sharpness),
    SpamAssassin's score, support in Gmail, Outlook, Apple Mail and Yahoo,
    accessibility (contrast, language, headings, link texts), size and
    truncation on a phone, and the sender domain's SPF, DKIM and DMARC.
    docs/preflight.md explains every finding.
    \b
    Examples:
      newsletter preflight issues/2026-12-01.yaml
      newsletter preflight issues/2026-12-01.yaml --offline --fail-on warning
    """
    project = current_project()
    report = run_preflight(project, issue_file, offline=offline)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        console.print(report_table(report, show_info=details))
        level = "[red]" if report.errors else "[yellow]" if report.warnings else "[green]"
        console.print(f"{level}Preflight: {report.summary_line()}[/] ({report.seconds:.1f} s).")
        if report.errors:
            console.print(f"Fix the errors, then run `newsletter preflight {issue_file}` again.",
                          soft_wrap=True)
    if report.fails("warning" if fail_on == "warning" else "error"):
        sys.exit(1)


COMMANDS = [preflight_command]
