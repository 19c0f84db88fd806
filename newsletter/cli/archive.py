"""`newsletter archive`: build the web archive of past issues, and preview it."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ..archive import build_archive, serve
from ..delivery.status import sent_issue_names
from ._common import console, current_project


@click.group("archive")
def archive_group() -> None:
    """Publish past issues as a website, with a feed and search.

    \b
      newsletter archive build        write the site into site/
      newsletter archive serve        look at it on http://127.0.0.1:8000/
    """


@archive_group.command("build")
@click.option(
    "--output", "-o",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the site into (default: site/ in the project).",
)
@click.option(
    "--search/--no-search", default=True, show_default=True,
    help="Build the search index (Pagefind). --no-search is quicker while you try designs.",
)
def build_command(output: Path | None, search: bool) -> None:
    """Build the archive website from every issue already published.

    An issue is published once it has been sent to a list (`newsletter send`),
    or, for teams that send it elsewhere, from the day after its date. Drafts
    never are. The command names every issue it left out, and why.

    Only what changed since the last build is written again, so running it
    after each issue is quick. Upload the whole folder to any static web host
    (it holds index.html, one page per issue, feed.xml, sitemap.xml and the
    search index). An issue left out is removed if it was published before.
    """
    project = current_project()
    out_dir = output.resolve() if output else None
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console, transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=done, total=total)

        report = build_archive(project, out_dir, search=search, progress=progress,
                               sent=sent_issue_names(project))

    table = Table(title=f"Archive built in {report.out_dir}", title_justify="left")
    table.add_column("What")
    table.add_column("Count", justify="right")
    table.add_row("Issues published", str(report.published))
    table.add_row("Drafts left out", str(report.drafts))
    table.add_row("Not published yet", str(len(report.left_out) - report.drafts))
    table.add_row("Issue pages written", str(len(report.pages_written)))
    table.add_row("Issue pages already up to date", str(report.pages_skipped))
    table.add_row("Issue pages removed", str(len(report.pages_removed)))
    table.add_row("Other files written", str(len(report.files_written)))
    if not search:
        indexed = "skipped (--no-search)"
    elif report.search_pages is None:
        indexed = "up to date"
    else:
        indexed = f"{report.search_pages} page(s) indexed"
    table.add_row("Search index", indexed)
    console.print(table)
    for name, reason in report.left_out:
        console.print(f"Left out {escape(name)}: {escape(reason)}.", soft_wrap=True)
    console.print(f"Done in {report.total_seconds:.1f} s. "
                  "Next: preview it with `newsletter archive serve`"
                  + (f" -d {output}" if output else "") + ".")


@archive_group.command("serve")
@click.option("--port", "-p", default=8000, show_default=True, help="Port to listen on.")
@click.option(
    "--directory", "-d",
    type=click.Path(file_okay=False, path_type=Path),
    help="The built site (default: site/ in the project).",
)
def serve_command(port: int, directory: Path | None) -> None:
    """Preview the built archive at http://127.0.0.1:PORT/ (Ctrl+C stops it).

    Only this computer can open it. Run `newsletter archive build` first, and
    again after changing issues; reload the page to see the changes.
    """
    folder = directory.resolve() if directory else current_project().root / "site"
    serve(
        folder,
        port=port,
        on_ready=lambda url: console.print(
            f"Serving {folder} at [bold]{url}[/] — press Ctrl+C to stop."
        ),
    )


COMMANDS = [archive_group]
