"""serve, subscribers sync: run the web service; pull SendGrid's suppressions."""

from __future__ import annotations

import datetime as dt

import click
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ._common import console, current_project, err_console


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 for every interface (behind a proxy).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on.")
@click.option("--welcome/--no-welcome", default=True, show_default=True,
              help="Send the welcome email (templates/web/welcome_email.*) to new subscribers.")
@click.option("--forwarded-allow-ips", metavar="IPS",
              help="Proxies trusted to say the visitor's address in X-Forwarded-For (comma-"
              "separated, or '*'); default 127.0.0.1. Rate limits count per visitor address.")
def serve_command(host: str, port: int, welcome: bool, forwarded_allow_ips: str | None) -> None:
    """Run the web service: sign-up, unsubscribe, SendGrid's webhook and the archive.

    \b
    Pages:
      /subscribe/LIST        sign-up form (also takes JSON)
      /unsubscribe/TOKEN     the links in every email (and one-click unsubscribe)
      /webhooks/sendgrid     SendGrid's Event Webhook (signed)
      /healthz               health check for your monitoring
      /                      the archive built by `newsletter archive build`

    \b
    Needs NEWSLETTER_SECRET (the same one used to send). For the webhook, set
    SENDGRID_WEBHOOK_PUBLIC_KEY to the verification key from SendGrid.

    \b
    Example:
      newsletter serve --port 8080
    """
    from ..web.app import create_app, run_app

    project = current_project()
    app = create_app(project, welcome=welcome)  # checks secrets and opens the database
    if app.state.web.verifier is None:
        err_console.print("[yellow]SENDGRID_WEBHOOK_PUBLIC_KEY is not set: /webhooks/sendgrid "
                          "will answer 503 until it is.[/]")
    console.print(f"Serving [bold]{project.config.name}[/] on http://{host}:{port}/ "
                  "(Ctrl-C stops)")
    run_app(app, host, port, forwarded_allow_ips=forwarded_allow_ips)


@click.command("sync")
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


def _attach_sync() -> bool:
    """Add ``sync`` to the store's `subscribers` group, if that group exists."""
    from . import subscribers

    candidates = [getattr(subscribers, "subscribers_group", None), *subscribers.COMMANDS]
    for group in candidates:
        if isinstance(group, click.Group) and group.name == "subscribers":
            group.commands.setdefault("sync", sync_command)
            return True
    return False


_attach_sync()
COMMANDS: list[click.Command] = [serve_command]
