"""serve: run the web service."""

from __future__ import annotations

import logging
import os

import click

from ._common import current_project

FACTORY = "newsletter.web.app:app_from_env"


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 for every interface (behind a proxy).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes; they share rate limits, the email queue and "
              "housekeeping through the database. See docs/performance.md for how many.")
@click.option("--welcome/--no-welcome", default=True, show_default=True,
              help="Send the welcome email (templates/web/welcome_email.*) to new subscribers.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: one JSON object per line (journald, a collector).")
@click.option("--trusted-proxies", "--forwarded-allow-ips", "trusted_proxies", metavar="IPS",
              help="Reverse proxies whose X-Forwarded-For/-Proto are believed (comma-"
              "separated addresses or networks); overrides [web] trusted_proxies in "
              "newsletter.toml. Default: none.")
def serve_command(host: str, port: int, workers: int, welcome: bool, log_format: str,
                  trusted_proxies: str | None) -> None:
    """Run the web service: sign-up, unsubscribe, SendGrid's webhook and the archive.

    \b
    Pages:
      /subscribe/LIST        sign-up form (also takes JSON)
      /unsubscribe/TOKEN     the links in every email (and one-click unsubscribe)
      /webhooks/sendgrid     SendGrid's Event Webhook (signed)
      /healthz               health check for your monitoring
      /                      the archive built by `newsletter archive build`

    \b
    Signs links with the project's secret (NEWSLETTER_SECRET, else subscribers/.secret:
    the same one every send used). For the webhook, set
    SENDGRID_WEBHOOK_PUBLIC_KEY to the verification key from SendGrid. Behind nginx
    or Caddy, list the proxy in [web] trusted_proxies (docs/operations.md).

    \b
    Example:
      newsletter serve --port 8080 --workers 2
    """
    # Imported here, not at the top: the web stack is slow to load and only serve needs it.
    from ..store.database import announce_to
    from ..web.app import PROJECT_ENV, WELCOME_ENV, create_app, prepare_serving, run_app

    prepare_serving(log_format, trusted_proxies)  # every line from here on is a log line
    announce_to(logging.getLogger("newsletter.store").info)  # "Database: …" as a log line
    log = logging.getLogger("newsletter.web")
    project = current_project()
    app = create_app(project, welcome=welcome)  # checks secrets, config and the database
    ctx = app.state.web
    if ctx.verifier is None:
        log.warning("SENDGRID_WEBHOOK_PUBLIC_KEY is not set: /webhooks/sendgrid will answer "
                    "503 until it is")
    log.info("serving %s on http://%s:%d/ with %d worker(s) (Ctrl-C stops)",
             project.config.name, host, port, workers)
    if workers == 1:
        run_app(app, host, port, log_format=log_format)
        return
    ctx.db.dispose()  # each worker process opens its own
    os.environ[PROJECT_ENV] = str(project.root)
    os.environ[WELCOME_ENV] = "1" if welcome else "0"
    run_app(FACTORY, host, port, workers=workers, log_format=log_format)


COMMANDS: list[click.Command] = [serve_command]
