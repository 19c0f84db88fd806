"""send, status, cancel: deliver an issue to a list, see how sends went, cancel a scheduled one."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import click
from rich import box
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress
from rich.table import Table
from rich.text import Text

from ..delivery.models import BatchState, Campaign
from ..delivery.overview import IN_FLIGHT, NOT_SENT, CampaignOverview
from ..delivery.planning import SendOptions, SendPlan, check_test_addresses, plan_send
from ..delivery.refusals import REASON, next_step
from ..delivery.schedule import parse_at
from ..delivery.send import run_send
from ..delivery.sendreport import Progress, SendReport
from ..delivery.status import campaigns_status, cancel_send, status_document
from ..delivery.transports import TRANSPORTS
from ..errors import NewsletterError
from ..project import Project
from ..store.events import ENGAGEMENT, engagement
from ..store.leaving import project_reason_counts
from ..store.mailqueue import queue_counts
from ._common import console, current_project, err_console

ISSUE_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


class _Rate(ProgressColumn):
    """Recipients per second."""

    def render(self, task):  # type: ignore[no-untyped-def]
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "–/s", style="progress.data.speed")


class _Bar(Progress):
    def __init__(self, bar: RichProgress, label: str) -> None:
        self.bar, self.label = bar, label
        self.task: TaskID | None = None

    def start(self, total: int) -> None:
        self.task = self.bar.add_task(self.label, total=total)

    def advance(self, recipients: int) -> None:
        if self.task is not None:
            self.bar.advance(self.task, recipients)

    def stopping(self) -> None:
        self.bar.console.print("Stopping: no new batches start; finishing the requests "
                               "already sent, so their answers are recorded…")


def _shown_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _addresses(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def _summary(plan: SendPlan) -> Table:
    table = Table(title="About to send", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    mode = {"send": "send", "test": "TEST send (nothing recorded)",
            "dry-run": "dry run: build every request, send none",
            "sandbox": "SendGrid sandbox: checked by SendGrid, not delivered, nothing "
            "recorded"}[plan.mode]
    if plan.options.sandbox and plan.mode == "test":
        mode += ", in SendGrid sandbox mode"
    rows = [
        ("Issue", f"{plan.issue.name} (no. {plan.issue.number})"),
        ("Subject", plan.subject),
        ("From", plan.from_line),
        ("List", plan.list_slug if plan.mode != "test"
         else ", ".join(check_test_addresses(plan.options.test_addresses))),
        ("Recipients", f"{plan.recipient_count:,}"),
        ("Transport", plan.transport),
        ("Mode", mode),
    ]
    if plan.database is not None:
        rows.append(("Database", plan.database.label))
    if plan.preflight is not None:
        forced = " (sending anyway: --force)" if plan.preflight.errors and plan.mode == "send" \
            else ""
        rows.append(("Preflight", f"{plan.preflight.summary_line()}{forced}; details: "
                     f"`newsletter preflight {plan.options.issue_path}`"))
    if plan.schedule_note:
        rows.append(("Scheduled for", plan.schedule_note))
    if plan.daily_note:
        rows.append(("Daily cap", plan.daily_note))
    if plan.resuming:
        rows.append(("Resuming", f"{plan.already_accepted:,} already accepted; sending the rest"))
    if plan.in_flight:
        rows.append(("Elsewhere", f"{plan.in_flight:,} recipients are being sent by another "
                     "`newsletter send` right now; this one joins it"))
    if plan.ambiguous:
        action = "sending again" if plan.options.retry_ambiguous else "left alone"
        where = ("" if plan.transport == "smtp"
                 else f" in {plan.ambiguous_batches} batch(es)")
        rows.append(("Ambiguous", f"{plan.ambiguous:,} recipients{where} got no answer last "
                     f"time ({action})"))
    if plan.secret_source and plan.secret_source != "NEWSLETTER_SECRET":
        rows.append(("Links signed with", plan.secret_source))
    for name, value in rows:
        table.add_row(name, escape(value))
    return table


def _report(report: SendReport, list_slug: str) -> None:
    verb = {"send": "Accepted", "test": "Sent (test)", "dry-run": "Built",
            "sandbox": "Accepted in sandbox"}[report.mode]
    table = Table(title="Send report", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row(verb, f"{report.recipients_accepted:,} recipients in "
                  f"{report.batches_accepted or report.requests} request(s)")
    table.add_row("Time", f"{report.elapsed:.1f} s ({report.rate:,.0f} recipients/s)")
    if report.mode in ("dry-run", "sandbox"):
        table.add_row("Request size", f"{report.bytes_built / 1e6:.1f} MB in total, largest "
                      f"{report.largest_request / 1e6:.2f} MB (limit 30 MB)")
    if report.bounced:
        table.add_row("Bounced", f"{report.bounced:,} addresses the SMTP server refused; they "
                      "are marked bounced and get nothing more")
    if report.skipped_unsubscribed:
        table.add_row("Left out", f"{report.skipped_unsubscribed:,} who unsubscribed or bounced "
                      "since the send started")
    if report.refused:
        table.add_row("Not sent", f"{len(report.refused):,} address(es) no mail server "
                      "accepts (named below)")
    console.print(table)
    if report.outbox is not None:
        console.print(f"The messages are in {escape(_shown_path(report.outbox))}/ "
                      "(.eml files: open them with any mail program).", soft_wrap=True)
    for problem in report.failed:
        err_console.print(f"[red]Batch {problem.number} ({problem.recipients} recipients) "
                          f"failed:[/] {escape(problem.message)}", soft_wrap=True)
    for problem in report.ambiguous:
        err_console.print(f"[yellow]Batch {problem.number} ({problem.recipients} recipients) "
                          f"is ambiguous:[/] {escape(problem.message)}", soft_wrap=True)
    for address in report.refused[:50]:
        err_console.print(f"[yellow]Not sent to {escape(address)}:[/] {REASON}.",
                          soft_wrap=True)
    if len(report.refused) > 50:
        err_console.print(f"… and {len(report.refused) - 50:,} more (`newsletter status` "
                          "lists them).")
    if report.refused:
        err_console.print(f"Next: {escape(next_step(list_slug, report.refused))}",
                          soft_wrap=True)


@click.command("send")
@click.argument("issue_file", type=ISSUE_FILE)
@click.option("--list", "-l", "list_slug", metavar="SLUG",
              help="The list to send to (default: [delivery] default_list).")
@click.option("--transport", type=click.Choice(TRANSPORTS),
              help="outbox (write .eml files), sendgrid, or smtp (the [smtp] server) "
              "(default: [delivery] transport).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--test", "test_addresses", multiple=True, metavar="ADDRESS",
              help="Send only to this address (repeat, or separate with commas), with "
              "[TEST] before the subject. Records nothing.")
@click.option("--dry-run", is_flag=True, help="Build every request and send none.")
@click.option("--sandbox", is_flag=True,
              help="SendGrid sandbox mode: SendGrid checks the requests but delivers nothing. "
              "Records nothing, like --test.")
@click.option("--at", "at", metavar="WHEN",
              help='Schedule: "2026-12-01 09:00 Europe/Berlin" (at most 72 hours ahead; '
              "sendgrid only). Cancel with `newsletter cancel`.")
@click.option("--retry-ambiguous", is_flag=True,
              help="Also send batches whose earlier request got no answer (they may have been "
              "delivered: some people may get the issue twice).")
@click.option("--force", is_flag=True, help="Send even when preflight finds errors.")
@click.option("--offline-preflight", is_flag=True,
              help="Run preflight without the network checks (links, images, sender domain).")
@click.option("--allow-placeholders", is_flag=True,
              help="Send even though the issue still holds TODO, TK or lorem ipsum "
              "(without it, such an issue is refused, even with --yes).")
def send_command(
    issue_file: Path,
    list_slug: str | None,
    transport: str | None,
    yes: bool,
    test_addresses: tuple[str, ...],
    dry_run: bool,
    sandbox: bool,
    at: str | None,
    retry_ambiguous: bool,
    force: bool,
    offline_preflight: bool,
    allow_placeholders: bool,
) -> None:
    """Send ISSUE_FILE to every subscribed member of a list.

    \b
    Checks and renders the issue, runs preflight (errors stop a send unless
    --force), counts the recipients, shows a summary and asks before sending.
    Safe to run again: an interrupted send resumes where it stopped, and an
    issue is never sent twice to the same list.
    \b
    Examples:
      newsletter send issues/2026-12-01.yaml --test me@example.org
      newsletter send issues/2026-12-01.yaml --list weekly
      newsletter send issues/2026-12-01.yaml --list weekly --at "2026-12-01 09:00 Europe/Berlin"
    """
    project = current_project()
    when = parse_at(at, project.config.timezone) if at else None
    options = SendOptions(
        issue_path=issue_file, list_slug=list_slug, transport=transport,
        test_addresses=_addresses(test_addresses), dry_run=dry_run, sandbox=sandbox,
        at=when, retry_ambiguous=retry_ambiguous, allow_placeholders=allow_placeholders,
        preflight="offline" if offline_preflight else "full", force=force,
    )
    plan = plan_send(project, options)
    for warning in plan.warnings:
        err_console.print(f"[yellow]{escape(warning)}[/]", soft_wrap=True)
    console.print(_summary(plan))
    if not yes and plan.mode != "dry-run" and not click.confirm("Send it?", default=False):
        raise click.Abort()
    with RichProgress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _Rate(),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=console, transient=False,
    ) as bar, _stop_signals_as_ctrl_c():
        report = run_send(plan, progress=_Bar(bar, "Sending" if not dry_run
                                                      else "Building"))
    _report(report, plan.list_slug)
    if report.stopped:
        err_console.print(f"[red]Stopped:[/] {escape(report.stopped)}", soft_wrap=True)
    if report.mode == "send" and not report.complete and not report.left_over \
            and report.elsewhere.batches:
        until = report.elsewhere.until
        after = f" after {until:%H:%M:%S} UTC, when its hold runs out" if until else ""
        console.print(
            f"[yellow]This sender's part is done.[/] {report.elsewhere.recipients:,} "
            f"recipients in {report.elsewhere.batches} batch(es) are held by another "
            "`newsletter send`, which is finishing them; `newsletter status` shows when all "
            f"went out. If that send has stopped, run this command again{after}.",
            soft_wrap=True)
        return
    if report.mode == "send" and not report.complete:
        hint = f"Run `newsletter send {issue_file} --list {plan.list_slug}` again to resume."
        if report.total_ambiguous and plan.transport == "smtp":
            hint += (f" {report.total_ambiguous:,} messages got no answer from the SMTP "
                     "server (`newsletter status` names them); add --retry-ambiguous only "
                     "after checking the service's logs.")
        elif report.total_ambiguous and plan.transport == "outbox":
            hint += (f" {report.total_ambiguous:,} recipients are in batches that stopped "
                     f"half-written; look in {report.outbox or 'the outbox folder'} for "
                     "their .eml files, then add --retry-ambiguous to write them again.")
        elif report.total_ambiguous:
            hint += (f" {report.total_ambiguous:,} recipients are in ambiguous batches; add "
                     "--retry-ambiguous only after checking SendGrid's Activity feed.")
        if report.elsewhere.batches:
            hint += (f" Another `newsletter send` is still sending {report.elsewhere.recipients:,}"
                     " recipients.")
        raise NewsletterError("The send is not complete.", hint=hint)
    if report.mode == "send" and plan.schedule_note:
        console.print(f"[green]Scheduled for {escape(plan.schedule_note)}:[/] SendGrid holds "
                      f"{plan.issue.name} for every recipient of {escape(repr(plan.list_slug))} "
                      "and delivers it then. Cancel until 10 minutes before with "
                      f"`newsletter cancel {escape(str(issue_file))}`.", soft_wrap=True)
    elif report.mode == "send":
        but = (f" except the {len(report.refused):,} address(es) named above"
               if report.refused else "")
        console.print(f"[green]Done:[/] {plan.issue.name} went to every recipient of "
                      f"{plan.list_slug!r}{but}.")


def _when(item_campaign: Campaign) -> str:
    """ "2021-02-01 to 'weekly': started 2026-11-30 09:00, finished 09:04 UTC"."""
    started, finished = item_campaign.created_at, item_campaign.finished_at
    if finished is None:
        end = "not finished" if item_campaign.status != "cancelled" else "cancelled"
    else:
        shown = f"{finished:%H:%M}" if finished.date() == started.date() \
            else f"{finished:%Y-%m-%d %H:%M}"
        end = f"{'cancelled' if item_campaign.status == 'cancelled' else 'finished'} {shown}"
    return (f"{item_campaign.issue_name} to {item_campaign.list_slug!r}: started "
            f"{started:%Y-%m-%d %H:%M}, {end} (UTC)")


@contextlib.contextmanager
def _stop_signals_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (systemd stopping a job, `kill`) and SIGHUP (a closed terminal) stop a send
    the way Ctrl-C does: the requests in flight finish and are recorded, rather than left
    ambiguous as after a crash."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stops = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    before = {number: signal.signal(number, signal.default_int_handler) for number in stops}
    try:
        yield
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)


@click.command("status")
@click.argument("issue_file", type=ISSUE_FILE, required=False)
@click.option("--json", "as_json", is_flag=True,
              help="Print the sends as JSON (for scripts) instead of tables.")
def status_command(issue_file: Path | None, as_json: bool) -> None:
    """Show every send (of ISSUE_FILE, if given): when it started and finished, and its
    batches and recipients per state.

    \b
    accepted    SendGrid (or the outbox) took their batch
    pending     not sent yet; `newsletter send` sends it
    failed      refused or gave up; `newsletter send` tries it again
    in flight   a running `newsletter send` is waiting for SendGrid's answer
    ambiguous   the request got no answer and its sender has stopped: maybe
                delivered. Check SendGrid's Activity feed, then decide on
                `newsletter send --retry-ambiguous`
    not sent    left out for good: an address no mail server accepts, or one
                an SMTP server refused (named below the table)

    \b
    Examples:
      newsletter status
      newsletter status issues/2021-02-01.yaml
      newsletter status issues/2021-02-01.yaml --json
    """
    project = current_project()
    if as_json:
        found = campaigns_status(project, issue_file)
        document = status_document(found, engagement(project, [i.campaign.id for i in found]))
        click.echo(json.dumps(document, indent=2))
        return
    waiting = queue_counts(project)
    if any(waiting.values()):
        console.print(f"Sign-up emails (confirm, welcome): {waiting['waiting']:,} waiting to be "
                      f"sent again by `newsletter serve`, {waiting['failed']:,} failed "
                      "(see docs/operations.md).")
    found = campaigns_status(project, issue_file)
    if not found:
        console.print("No sends yet." if issue_file is None
                      else f"{issue_file.stem} has not been sent to any list yet.")
        _print_reasons(project)
        return
    table = Table(title="Sends", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("Issue", no_wrap=True)
    table.add_column("List", no_wrap=True)
    table.add_column("Via", no_wrap=True)
    table.add_column("Status")
    # "In flight" only while a send is running, to keep the table narrow.
    columns: list[str] = [BatchState.ACCEPTED, BatchState.PENDING, BatchState.FAILED,
                          BatchState.SUBMITTING]
    if any(item.in_flight.batches for item in found):
        columns.insert(2, IN_FLIGHT)
    if any(item.not_sent.recipients for item in found):  # named below the table
        columns.append(NOT_SENT)
    labels = {IN_FLIGHT: "In flight", BatchState.SUBMITTING.value: "Ambiguous",
              NOT_SENT: "Not sent"}
    for key in columns:
        table.add_column(labels.get(key, str(key).title()), justify="right")
    for item in found:
        c, counts = item.campaign, item.counts
        status = c.status
        if c.send_at is not None and status != "cancelled":
            status += f", scheduled {c.send_at:%Y-%m-%d %H:%M} UTC"
        cells = {key: f"{counts[key].recipients:,}" for key in columns}
        if item.messages is not None:  # SMTP: the server answered message by message
            m = item.messages
            cells.update({BatchState.ACCEPTED: f"{m.accepted:,}", IN_FLIGHT: f"{m.in_flight:,}",
                          BatchState.SUBMITTING: f"{m.ambiguous:,}",
                          BatchState.PENDING: f"{m.unsent:,}", BatchState.FAILED: "–"})
            if m.bounced:
                status += f", {m.bounced:,} bounced"
        table.add_row(escape(c.issue_name), escape(c.list_slug), c.transport, status,
                      *(cells[key] for key in columns))
    console.print(table)
    for item in found:
        console.print(escape(_when(item.campaign)), soft_wrap=True)
    _ambiguous_messages(found)
    _not_delivered(found)
    stats = engagement(project, [item.campaign.id for item in found])
    if stats:
        seen = Table(title="What readers did (from SendGrid's event webhook)",
                     box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        seen.add_column("Issue", no_wrap=True)
        seen.add_column("List", no_wrap=True)
        for label in ENGAGEMENT:
            seen.add_column(label, justify="right")
        for item in found:
            events = stats.get(item.campaign.id)
            if events:
                seen.add_row(escape(item.campaign.issue_name), escape(item.campaign.list_slug),
                             *(f"{sum(events.get(n, 0) for n in names):,}"
                               for names in ENGAGEMENT.values()))
        console.print(seen)
        console.print("Machine opens are Apple Mail Privacy Protection fetching images; they "
                      "are not people reading.")
    _print_reasons(project)
    problems = [(item.campaign, b) for item in found for b in item.problems]
    if problems:
        detail = Table(title="Batches needing attention", box=box.SIMPLE_HEAD, pad_edge=False)
        for column in ("Issue", "List", "Batch", "State", "Recipients", "Attempts", "Last error"):
            detail.add_column(column)
        for c, b in problems[:50]:
            shown = "ambiguous" if b.state == BatchState.SUBMITTING else b.state
            detail.add_row(escape(c.issue_name), escape(c.list_slug), str(b.number), shown,
                           str(b.recipient_count), str(b.attempts), escape(b.last_error[:200]))
        console.print(detail)
        if len(problems) > 50:
            console.print(f"… and {len(problems) - 50} more.")


def _ambiguous_messages(found: list[CampaignOverview]) -> None:
    """SMTP sends: the messages that got no answer, by address."""
    if _address_table(found, "ambiguous_messages", "Messages that got no answer (maybe "
                      "delivered)", "What happened"):
        console.print("Check the SMTP service's logs for them; `newsletter send ... "
                      "--retry-ambiguous` sends them again.")


def _not_delivered(found: list[CampaignOverview]) -> None:
    """Recipients refused for good (an SMTP server's 5xx, or an address no server accepts)."""
    _address_table(found, "not_delivered", "Recipients not sent to", "Why")


def _address_table(found: list[CampaignOverview], attribute: str, title: str,
                   last: str) -> bool:
    """A table of the sends' (batch number, email, text) rows held in ``attribute``;
    False (and nothing printed) if there are none."""
    rows = [(item.campaign, row) for item in found for row in getattr(item, attribute)]
    if not rows:
        return False
    detail = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("Issue", "List", "Batch", "Address", last):
        detail.add_column(column)
    for c, (number, email, what) in rows:
        detail.add_row(escape(c.issue_name), escape(c.list_slug), str(number), escape(email),
                       escape(what[:300]))
    console.print(detail)
    return True


def _print_reasons(project: Project) -> None:
    """Why readers left, as they said on the unsubscribe page (counted per list)."""
    reasons = project_reason_counts(project)
    if not reasons:
        return
    table = Table(title="Why readers left (unsubscribe page)", box=box.SIMPLE_HEAD,
                  pad_edge=False, collapse_padding=True)
    table.add_column("List", no_wrap=True)
    table.add_column("Reason")
    table.add_column("People", justify="right")
    for item in reasons:
        table.add_row(escape(item.list_slug), item.label, f"{item.count:,}")
    console.print(table)


@click.command("cancel")
@click.argument("issue_file", type=ISSUE_FILE)
@click.option("--list", "-l", "list_slug", metavar="SLUG",
              help="The list the send was scheduled for (default: [delivery] default_list).")
def cancel_command(issue_file: Path, list_slug: str | None) -> None:
    """Cancel a send scheduled with `newsletter send --at` (until 10 minutes before)."""
    project = current_project()
    result = cancel_send(project, issue_file, list_slug)
    console.print(
        f"Cancelled: {escape(result.issue_name)} to {escape(result.list_slug)!r} "
        f"({result.recipients:,} recipients) scheduled for {result.send_at:%Y-%m-%d %H:%M} UTC. "
        "You can send or schedule it again."
    )


COMMANDS = [send_command, status_command, cancel_command]
