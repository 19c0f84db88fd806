"""Commands for lists and subscribers: a thin shell over newsletter.store."""

from __future__ import annotations

import datetime as dt
import sys
from contextlib import ExitStack
from pathlib import Path

import click
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ..errors import NewsletterError
from ..project import Project
from ..store import (
    Database,
    MembershipStatus,
    NotFound,
    Source,
    SubscriberStatus,
    add_subscriber,
    create_list,
    default_list,
    forget,
    get_list,
    get_subscriber,
    history,
    list_summaries,
    memberships,
    open_project_database,
    set_subscriber_status,
    unsubscribe,
    use_secret,
)
from ..store.export import export_csv, export_xlsx
from ..store.importer import ImportReport, import_csv
from ..tokens import project_secret
from ._common import console, current_project, err_console

_PROGRESS_FROM_BYTES = 512 * 1024  # smaller files import in well under a second


def _database() -> tuple[Project, Database]:
    project = current_project()
    database = open_project_database(project)
    # Erased addresses are checked with the project's secret, looked up only when needed.
    use_secret(database.engine, lambda: project_secret(project.root))
    return project, database


def _list_slug(project: Project, database: Database, slug: str | None) -> str:
    """The --list given, else [delivery] default_list (created on first use)."""
    slug = slug or project.config.delivery.default_list
    if not slug:
        raise NewsletterError(
            "Which list? Give --list SLUG (or set default_list in [delivery] of newsletter.toml).",
            hint="See the lists with `newsletter lists`.",
        )
    if slug == project.config.delivery.default_list:
        with database.transaction() as session:
            default_list(session, slug, project.config.name)  # the store decides how
    return slug


_LIST_OPTION = click.option(
    "--list",
    "list_slug",
    metavar="SLUG",
    help="The list's short name (default: default_list in newsletter.toml, e.g. weekly).",
)


# ---------------------------------------------------------------- lists


@click.group("lists", invoke_without_command=True)
@click.pass_context
def lists_group(ctx: click.Context) -> None:
    """Show the mailing lists and how many people are on each.

    \b
    Examples:
      newsletter lists
      newsletter lists create weekly --name "Weekly Brief"
    """
    if ctx.invoked_subcommand is not None:
        return
    _project, database = _database()
    with database.transaction() as session:
        summaries = list_summaries(session)
    if not summaries:
        console.print("No lists yet. Create one with "
                      '`newsletter lists create weekly --name "Weekly Brief"`.')
        return
    table = Table(title="Lists")
    table.add_column("List")
    table.add_column("Name")
    table.add_column("Opt-in")
    for heading in ("Receive mail", "Subscribed", "Unconfirmed", "Unsubscribed"):
        table.add_column(heading, justify="right")
    for item in summaries:
        table.add_row(
            item.slug, escape(item.name), item.opt_in, f"{item.recipients:,}",
            f"{item.subscribed:,}", f"{item.unconfirmed:,}", f"{item.unsubscribed:,}",
        )
    console.print(table)
    console.print("Receive mail = subscribed and not bounced, complained or blocklisted.")


@lists_group.command("create")
@click.argument("slug")
@click.option("--name", required=True, help='The name people see, e.g. "Weekly Brief".')
@click.option("--description", default="", help="One sentence on what the list is for.")
@click.option(
    "--double-opt-in",
    is_flag=True,
    help="New sign-ups must click a confirmation link before they receive mail.",
)
def lists_create(slug: str, name: str, description: str, double_opt_in: bool) -> None:
    """Create a list called SLUG (lower-case letters, digits, - and _)."""
    _project, database = _database()
    with database.transaction() as session:
        create_list(session, slug, name, description, double_opt_in=double_opt_in)
    kind = "double opt-in" if double_opt_in else "single opt-in"
    console.print(f"Created the list [bold]{slug}[/] ({escape(name)}, {kind}).")
    console.print(f"Next: `newsletter subscribers import FILE.csv --list {slug}`.")


@lists_group.command("embed")
@click.argument("slug")
def lists_embed(slug: str) -> None:
    """Print an HTML sign-up form for SLUG to paste into your own website.

    It posts to `newsletter serve` (web_url in newsletter.toml), from the websites
    listed in allowed_origins in the [web] table; everyone who signs up through it
    confirms by email first. It stays valid for a year: then run this again.
    """
    from ..web import snippet  # imported here: the web package is slow to import

    project, database = _database()
    with database.transaction() as session:
        name = get_list(session, slug).name
    console.print(snippet(project.config.service_url, project_secret(project.root), slug, name),
                  markup=False, highlight=False, soft_wrap=True)
    if not project.config.web.allowed_origins:
        err_console.print(
            "[yellow]No website may use it yet:[/] add yours to newsletter.toml, e.g.\n"
            '  [web]\n  allowed_origins = ["https://www.example.org"]\n'
            "then restart `newsletter serve`.")


# ---------------------------------------------------------------- subscribers


@click.group("subscribers")
def subscribers_group() -> None:
    """Add, remove, look up, import and export subscribers.

    \b
    Examples:
      newsletter subscribers add ann@example.org --name "Ann Lee"
      newsletter subscribers import mailchimp-export.csv --list weekly --rejects rejects.csv
      newsletter subscribers show ann@example.org
      newsletter subscribers remove ann@example.org --reason "asked by phone"
      newsletter subscribers forget ann@example.org
      newsletter subscribers export --list weekly -o weekly.csv
    """


@subscribers_group.command("add")
@click.argument("email")
@_LIST_OPTION
@click.option("--name", help="The person's name, used in greetings.")
@click.option("--resubscribe", is_flag=True,
              help="Add back someone who unsubscribed from the list (only if they asked).")
def subscribers_add(email: str, list_slug: str | None, name: str | None,
                    resubscribe: bool) -> None:
    """Subscribe EMAIL to a list (at once, even on a double opt-in list).

    Someone who unsubscribed is only added back with --resubscribe. A bounced,
    complained or blocklisted address is never added: if it works again and they
    asked, first `newsletter subscribers set-status EMAIL active`.
    """
    project, database = _database()
    slug = _list_slug(project, database, list_slug)
    with database.transaction() as session:
        # The store refuses leavers (without --resubscribe) and bounced addresses.
        membership = add_subscriber(
            session, email, slug, name=name, status=MembershipStatus.SUBSCRIBED,
            source=Source.COMMAND, detail="newsletter subscribers add", resubscribe=resubscribe,
        )
        address = membership.subscriber.email
    console.print(f"[bold]{escape(address)}[/] is subscribed to {slug}.")


@subscribers_group.command("remove")
@click.argument("email")
@click.option("--list", "list_slug", metavar="SLUG",
              help="Unsubscribe from this list only (default: from every list).")
@click.option("--reason", default="", help="Why, kept in the history (e.g. 'asked by email').")
def subscribers_remove(email: str, list_slug: str | None, reason: str) -> None:
    """Unsubscribe EMAIL; the history of what happened is kept."""
    _project, database = _database()
    try:
        with database.transaction() as session:
            changed = unsubscribe(session, email, list_slug, source=Source.COMMAND,
                                  detail=reason)
            slugs = [m.mailing_list.slug for m in changed]
    except NotFound as exc:
        if not exc.message.startswith("No subscriber"):  # an unknown --list: its own hint
            raise
        # Not `subscribers add`: someone who asked to be removed must not be added.
        raise NewsletterError(
            f"{email} is not in the subscriber database, so there is nothing to remove; "
            "no email goes to an address that is not there.",
            hint="Check the spelling with `newsletter subscribers export` (or `subscribers "
            "show OTHER@ADDRESS`). To make sure imports never add them, run `newsletter "
            f"subscribers set-status {email} blocklisted`.",
        ) from None
    if slugs:
        console.print(f"Unsubscribed {escape(email)} from {', '.join(slugs)}.")
    else:
        console.print(f"{escape(email)} was not subscribed" +
                      (f" to {list_slug}." if list_slug else " to any list."))


@subscribers_group.command("forget")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask before erasing (for scripts).")
def subscribers_forget(email: str, yes: bool) -> None:
    """Erase EMAIL for good, when a person asks you to forget them (GDPR article 17).

    Deletes their name, details, lists, history and what they opened and clicked.
    Only a keyed fingerprint of the address is kept (it cannot be read back), so
    that no import, `subscribers add` or sign-up form can ever add them again. This
    cannot be undone.

    \b
    Example:
      newsletter subscribers forget ann@example.org
    """
    _project, database = _database()
    if not yes:
        try:
            agreed = click.confirm(
                f"Erase {email} for good? Their name, details and history are deleted, "
                "and the address can never be added again", default=False)
        except click.Abort:
            agreed = False
        if not agreed:
            console.print("Nothing was erased. To erase without being asked, add --yes.")
            raise SystemExit(1)
    with database.transaction() as session:
        done = forget(session, email)
    if done.known:
        console.print(
            f"Erased {escape(email)}: left {done.lists} list(s); {done.history} history "
            f"entries and {done.reader_events} open/click records deleted.")
    else:
        console.print(f"{escape(email)} was not stored; it is recorded all the same.")
    console.print("Only a fingerprint of the address is kept, so it can never be added again.")


@subscribers_group.command("set-status")
@click.argument("email")
@click.argument("status", type=click.Choice([s.value for s in SubscriberStatus],
                                            case_sensitive=False))
@click.option("--reason", default="", help="Why, kept in the history.")
def subscribers_set_status(email: str, status: str, reason: str) -> None:
    """Mark EMAIL as bounced, complained or blocklisted (no list sends to it), or active again.

    A blocklisted address that is not yet known is recorded, so imports skip it.
    """
    _project, database = _database()
    with database.transaction() as session:
        set_subscriber_status(session, email, status, source=Source.COMMAND, detail=reason)
    console.print(f"{escape(email)} is now {status}.")


@subscribers_group.command("show")
@click.argument("email")
def subscribers_show(email: str) -> None:
    """Show EMAIL's lists and the full history of status changes (when, how, why)."""
    _project, database = _database()
    with database.transaction() as session:
        subscriber = get_subscriber(session, email)
        lists = memberships(session, subscriber)
        entries = history(session, subscriber)
        slugs = {m.list_id: m.mailing_list.slug for m in lists}
        console.print(f"[bold]{escape(subscriber.email)}[/]  {escape(subscriber.name)}")
        console.print(f"Status: [bold]{subscriber.status}[/]   "
                      f"since {subscriber.status_changed_at:%Y-%m-%d %H:%M} UTC   "
                      f"added {subscriber.created_at:%Y-%m-%d %H:%M} UTC")
        for key, value in sorted((subscriber.attributes or {}).items()):
            console.print(f"  {escape(key)}: {escape(str(value))}")
        table = Table(title="Lists")
        for heading in ("List", "Status", "Since (UTC)", "How"):
            table.add_column(heading)
        for m in lists:
            table.add_row(m.mailing_list.slug, m.status, f"{m.changed_at:%Y-%m-%d %H:%M}", m.how)
        console.print(table)
        table = Table(title="History")
        for heading in ("When (UTC)", "List", "Change", "Source", "Detail"):
            table.add_column(heading)
        for entry in entries:
            table.add_row(
                f"{entry.at:%Y-%m-%d %H:%M:%S}",
                slugs.get(entry.list_id, "-") if entry.list_id else "(all lists)",
                f"{entry.old_status or 'new'} -> {entry.new_status}",
                entry.source,
                escape(entry.detail),
            )
        console.print(table)


@subscribers_group.command("export")
@_LIST_OPTION
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file: .csv, or .xlsx for an Excel workbook "
              "(default: print CSV to the screen).")
@click.option("--recipients-only", is_flag=True,
              help="Only the people who would receive mail (subscribed and active).")
@click.option("--excel", is_flag=True,
              help="Mark the CSV as UTF-8 so that Excel shows accents and other scripts "
              "(München, 北京) correctly.")
def subscribers_export(list_slug: str | None, output: Path | None, recipients_only: bool,
                       excel: bool) -> None:
    """Write a list's members as CSV (or .xlsx): email, name, status, dates and attributes.

    status is "subscribed" for people who receive mail, otherwise why not
    (unconfirmed, unsubscribed, bounced, complained or blocklisted). A name that a
    spreadsheet would run as a formula (starting with = + - or @) is written with
    a ' in front; importing the file removes it again.

    \b
    Examples:
      newsletter subscribers export --list weekly -o weekly.csv --excel
      newsletter subscribers export --list weekly -o weekly.xlsx
    """
    project, database = _database()
    slug = _list_slug(project, database, list_slug)
    include_all = not recipients_only
    if output is None:
        export_csv(database.engine, slug, sys.stdout, include_all=include_all, excel=excel)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix.lower() == ".xlsx":
        count = export_xlsx(database.engine, slug, output, include_all=include_all)
    else:
        with output.open("w", newline="", encoding="utf-8") as handle:
            count = export_csv(database.engine, slug, handle, include_all=include_all,
                               excel=excel)
    console.print(f"Wrote {count:,} rows to {output}.")


@subscribers_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_LIST_OPTION
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
              help="Write rows that were rejected or skipped to this CSV, with line and reason.")
@click.option("--resubscribe", is_flag=True,
              help="Add back people who unsubscribed from the list (only if they asked to "
              "rejoin). Bounced, complained and blocklisted addresses are never added back.")
def subscribers_import(
    file: Path, list_slug: str | None, rejects: Path | None, resubscribe: bool
) -> None:
    """Import subscribers from a CSV or Excel (.xlsx) FILE (e.g. a Mailchimp export).

    The file may be UTF-8 or Windows/Latin-1, separated by commas, semicolons or
    tabs; a line that is not UTF-8 is read as Windows-1252 and named in a warning.
    It needs an email column (email, Email Address or E-mail) and may have
    name, or First Name and Last Name; other columns are kept as attributes.
    A row with a NUL byte or a quote that is never closed is rejected.

    People who unsubscribed, bounced or complained are never added back: they
    are listed as skipped. Invalid addresses and duplicates are rejected with
    their line number. Importing the same file twice changes nothing, and an
    interrupted import is finished by running the same command again.

    \b
    Example:
      newsletter subscribers import export.csv --list weekly --rejects rejects.csv
    """
    project, database = _database()
    slug = _list_slug(project, database, list_slug)
    size = file.stat().st_size if file.is_file() else 0
    with ExitStack() as stack:
        handle = None
        if rejects is not None:
            handle = stack.enter_context(rejects.open("w", newline="", encoding="utf-8"))
        progress = stack.enter_context(Progress(
            "[progress.description]{task.description}", BarColumn(), DownloadColumn(),
            TimeRemainingColumn(), console=console, transient=True,
            disable=size < _PROGRESS_FROM_BYTES,
        ))
        task = progress.add_task(f"Importing {file.name}", total=size)
        report = import_csv(
            database.engine, file, slug, resubscribe=resubscribe, rejects=handle,
            progress=lambda done, total: progress.update(task, completed=done),
        )
    _print_report(report, rejects)


def _print_fallback(report: ImportReport, shown: int = 20) -> None:
    """Warn about the lines that were not UTF-8 (their accents may be wrong)."""
    lines = report.fallback_lines
    if not lines:
        return
    listed = ", ".join(map(str, lines[:shown])) + (
        f" and {len(lines) - shown:,} more" if len(lines) > shown else "")
    console.print(
        f"[yellow]Warning:[/] {len(lines):,} line(s) of {escape(report.path.name)} were not "
        f"UTF-8 and were read as Windows-1252: line {listed}. Check the names on those "
        "lines with `newsletter subscribers show EMAIL`; if they look wrong, save the file "
        "as 'CSV UTF-8' and import it again.")


def _print_report(report: ImportReport, rejects: Path | None) -> None:
    table = Table(title=f"Import of {report.path.name} into {report.list_slug}")
    table.add_column("Outcome")
    table.add_column("Rows", justify="right")
    for label, count in (
        ("added", report.added), ("updated", report.updated), ("unchanged", report.unchanged),
        ("rejected", report.rejected), ("skipped", report.skipped),
    ):
        table.add_row(label, f"{count:,}")
    console.print(table)
    shown = 20
    for title, rows, total in (("Skipped (never added back by an import)", report.skips,
                                report.skipped),
                               ("Rejected", report.rejects, report.rejected)):
        if not rows:
            continue
        console.print(f"[bold]{title}:[/]")
        for row in rows[:shown]:
            console.print(f"  line {row.line}: {escape(row.email)}: {escape(row.reason)}")
        if total > shown:
            console.print(f"  ... and {total - shown:,} more" +
                          (f" (all in {rejects})" if rejects else " (use --rejects FILE)"))
    if rejects is not None and (report.rejected or report.skipped):
        console.print(f"Rejected and skipped rows are in {rejects}.")
    _print_fallback(report)


@subscribers_group.command("sync")
def sync_command() -> None:
    """Pull SendGrid's suppressions (bounces, spam reports, unsubscribes) into the lists.

    For teams that do not run the webhook (`newsletter serve`). Each run fetches only
    what SendGrid added since the last run, so it suits a daily cron job. Bounced and
    spam-reporting addresses receive nothing more from any list; unsubscribes (global,
    or from [delivery] sendgrid_unsubscribe_group) leave every list.

    \b
    Needs SENDGRID_API_KEY with 'Suppressions' read access.

    \b
    Example:
      newsletter subscribers sync
    """
    from ..sync import sync_suppressions

    project = current_project()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err_console, transient=True) as progress:
        task = progress.add_task("Asking SendGrid…")
        seen: dict[str, int] = {}

        def on_page(kind: str, rows: int) -> None:
            seen[kind] = seen.get(kind, 0) + rows
            progress.update(task, description=f"{kind}: {seen[kind]:,} read")

        report = sync_suppressions(project, on_page=on_page)
    table = Table(title="SendGrid suppressions")
    table.add_column("Kind")
    table.add_column("Read from SendGrid", justify="right")
    table.add_column("Changed here", justify="right")
    for kind, count in report.fetched.items():
        table.add_row(kind, f"{count:,}", f"{report.changed.get(kind, 0):,}")
    console.print(table)
    since = "the beginning" if report.since is None else f"{_when(report.since)}"
    console.print(f"Covered {since} to {_when(report.until)}. Next run starts there.")


def _when(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


COMMANDS = [lists_group, subscribers_group]
