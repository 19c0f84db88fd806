"""Composing an issue from links: `newsletter add FILE URL...`."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from .. import article as article_module
from ..issue_editor import AddReport, add_items
from ._common import console, err_console


@click.command("add")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.argument("urls", nargs=-1, required=True)
@click.option("--dry-run", is_flag=True,
              help="Print the items that would be added, as YAML; change nothing.")
@click.option("--section", help="Put the new items under this section heading, after the "
              "issue's other items in it. Without it they get no heading, and go before the "
              "first one.")
@click.option("--timeout", type=click.FloatRange(min=1), default=article_module.TIMEOUT,
              show_default=True, metavar="SECONDS",
              help="Seconds to wait for each page before giving up.")
@click.option("--max-size", "max_mb", type=click.FloatRange(min=0.1),
              default=article_module.MAX_BYTES / 1024 / 1024, show_default=True, metavar="MB",
              help="Megabytes to read of each page (the details are at the top).")
def add_command(
    file: Path, urls: tuple[str, ...], dry_run: bool, section: str | None, timeout: float,
    max_mb: float,
) -> None:
    """Add a story to issue FILE for each URL, filled in from the article's page.

    Each page's title, publication, date, picture and description are copied
    into a new item: after the items of its --section, or, without one, with
    the items that have no section heading. What the page does not say is left
    as a TODO for you to write (`newsletter check FILE` lists them). Links that
    are already in the issue are skipped. Pages that cannot be read are
    reported and left out; the command then exits 1.

    \b
    Example:
      newsletter add issues/2021-02-08.yaml https://www.bbc.com/news/technology-55634388

    Where each field comes from: docs/composing.md.
    """
    with Progress(
        TextColumn("Reading pages"), BarColumn(), MofNCompleteColumn(),
        console=err_console, transient=True,
    ) as progress:
        task = progress.add_task("pages", total=len(urls))
        report = add_items(
            file, urls, dry_run=dry_run, section=section, timeout=timeout,
            max_bytes=int(max_mb * 1024 * 1024),
            on_fetched=lambda _url, _result: progress.advance(task),
        )
    if dry_run and report.yaml:
        _say(f"# Would add to {file}:", "dim")
        _say(report.yaml.strip("\r\n"))
        _say("")
    _print_report(report, file, dry_run)
    if report.failed:
        sys.exit(1)


def _say(text: str, style: str | None = None) -> None:
    """Print text as it is (no Rich markup, no wrapping: links and YAML stay whole)."""
    console.print(text, style=style, markup=False, soft_wrap=True)


def _print_report(report: AddReport, file: Path, dry_run: bool) -> None:
    verb = "Would add" if dry_run else "Added"
    for added in report.added:
        _say(f"✓ {verb} items[{added.position}]: {added.fields['title']}", "green")
        _say(f"    {added.url}", "dim")
        for note in added.notes:
            todo = note.split(":", 1)[0] in added.placeholders
            _say(f"    ! {note}" if todo else f"    {note}", "yellow" if todo else None)
    for skipped in report.skipped:
        _say(f"– Skipped {skipped.url}: {skipped.reason}", "cyan")
    for failed in report.failed:
        _say(f"✗ Failed {failed.url}: {failed.reason}", "red")
    if report.section_note:
        _say(report.section_note, "cyan")
    for note in report.notes:
        _say(note, "yellow")
    for diagnostic in report.diagnostics:
        _say(str(diagnostic), "red" if diagnostic.severity == "error" else "yellow")
    counts = f"{len(report.skipped)} skipped, {len(report.failed)} failed"
    if dry_run:
        _say(f"Would add {len(report.added)} item(s) to {file}; {counts}. Nothing was written.")
    elif report.written:
        _say(f"Added {len(report.added)} item(s) to {file}; {counts}.")
    else:
        _say(f"{file} is unchanged; {counts}.")
    if report.written and any(added.placeholders for added in report.added):
        _say(f"Next: replace the TODOs above in {file}, read the summaries through, then run "
             f"`newsletter check {file}`.")
    elif report.written:
        _say(f"Next: read the new summaries through, then run `newsletter check {file}`.")


COMMANDS = [add_command]
