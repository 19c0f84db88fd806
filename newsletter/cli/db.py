"""`newsletter db ...`: which database, its schema, upgrading it, copying it elsewhere."""

from __future__ import annotations

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from ..dbcopy import copy_database
from ..errors import NewsletterError
from ..migrations import current, head, pending, upgrade
from ..store.database import describe_url, open_database, project_database
from ._common import console, current_project


@click.group("db")
def db_group() -> None:
    """The subscriber database: its schema, upgrades, and moving it.

    \b
      newsletter db status            which database, and whether it needs an upgrade
      newsletter db upgrade           upgrade its schema (take a backup first)
      newsletter db copy --to URL     copy everything into a new, empty database
    """


@db_group.command("status")
def db_status() -> None:
    """Say which database the project uses and whether its schema is current."""
    choice = project_database(current_project())
    console.print(f"Database: {choice.shown} (from {choice.source})")
    found = current(choice.url)
    steps = pending(choice.url)
    if found == head():
        console.print(f"Schema: {found}, current.")
    elif found is None and not steps:
        console.print("Schema: none yet.")
    else:
        console.print(f"Schema: {found or 'none yet'}; this version needs {head()} "
                      f"({len(steps)} step(s) to apply).")
        console.print("Next: take a backup, then run `newsletter db upgrade`.")


@db_group.command("upgrade")
@click.option("--yes", is_flag=True, help="Do not ask; for scripts (take the backup first).")
def db_upgrade(yes: bool) -> None:
    """Upgrade the database's schema to this version's (after a backup)."""
    choice = project_database(current_project())
    console.print(f"Database: {choice.shown}")
    steps = pending(choice.url)
    if not steps:
        console.print(f"Nothing to do: the schema is current ({head()}).")
        return
    console.print(f"Upgrade: {current(choice.url) or 'empty'} → {head()} "
                  f"({len(steps)} step(s): {', '.join(steps)}).")
    console.print("Take a backup first: `pg_dump -Fc DBNAME > before-upgrade.dump` for "
                  "PostgreSQL, or copy the .db file while nothing runs (docs/operations.md).")
    console.print("Stop `newsletter serve` and sends that run an older version; the upgrade "
                  "waits for every other user of the database.")
    if not yes and not click.confirm("Upgrade now?", default=False):
        raise NewsletterError("Not upgraded.", hint="Run `newsletter db upgrade` when ready.")
    upgrade(choice.url)
    console.print(f"Done: the schema is at {head()}.")


@db_group.command("copy")
@click.option("--to", "to_url", required=True, metavar="URL",
              help="The new, empty database, e.g. postgresql://newsletter@localhost/newsletter "
              "(password from ~/.pgpass).")
def db_copy(to_url: str) -> None:
    """Copy every subscriber, status, history, campaign and event into another database.

    \b
    Ids stay the same, so links already sent keep working. The target must be
    empty; the counts are checked afterwards. Then point the project at it with
    [database] url in newsletter.toml.
    """
    choice = project_database(current_project())
    source = open_database(choice.url)
    console.print(f"Copying {choice.shown} → {describe_url(to_url)}")
    try:
        with Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                      console=console, transient=False) as bar:
            tasks: dict[str, TaskID] = {}

            def on_progress(table: str, done: int, total: int) -> None:
                if table not in tasks:
                    tasks[table] = bar.add_task(table, total=total)
                bar.update(tasks[table], completed=done)

            report = copy_database(source, to_url, on_progress)
    finally:
        source.dispose()
    console.print(f"Done: {report.total:,} rows in {len(report.counts)} tables copied; every "
                  "count matches.")
    console.print("Next: set [database] url in newsletter.toml to the new database (password in "
                  "NEWSLETTER_DATABASE_PASSWORD or ~/.pgpass) and run `newsletter db status`.")


COMMANDS = [db_group]
