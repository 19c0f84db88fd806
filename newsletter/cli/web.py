"""serve: run the web service."""

from __future__ import annotations

import click

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


COMMANDS: list[click.Command] = [serve_command]
