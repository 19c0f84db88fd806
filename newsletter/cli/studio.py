"""studio: compose, preview, check and send from the browser."""

from __future__ import annotations

import click

from ..errors import NewsletterError
from ..store import list_users, open_project_database
from ..tokens import secret_from_env
from ._common import console, current_project

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@click.command("studio")
@click.option("--port", default=8700, show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. 127.0.0.1: only this computer, no login. Any other "
              "(e.g. 0.0.0.0, behind an HTTPS proxy): the hosted studio, login required.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="Hosted: a host name the studio answers to, besides web_url's and "
              "[studio] allowed_hosts (repeat for several).")
def studio_command(port: int, host: str, allowed_hosts: tuple[str, ...]) -> None:
    """Open the studio: write, check, preview and send issues in your browser.

    \b
    On this computer (the default) it is for you alone: open the address it prints.
    Every change is saved into the issue's YAML file; `newsletter check`
    and `newsletter send` see the same thing the studio shows.
    \b
    For a team, run it with --host behind an HTTPS proxy (docs/studio.md,
    "Hosting the studio for a team"); people log in with the accounts made by
    `newsletter users add`.
    \b
    Examples:
      newsletter studio            then open http://127.0.0.1:8700/
      newsletter studio --host 0.0.0.0 --allowed-host studio.example.org
    """
    # Imported here to keep `newsletter --help` fast: the studio pulls in Starlette.
    import uvicorn

    from ..studio import create_app, hosted_app

    project = current_project()
    if host in LOOPBACK:
        app = create_app(project.root)
        console.print(f"The studio for [bold]{project.config.name}[/] is at "
                      f"http://127.0.0.1:{port}/ (Ctrl-C stops it)")
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
        return
    secret = secret_from_env()
    database = open_project_database(project)
    with database.transaction() as session:
        nobody = not list_users(session)
    if nobody:
        raise NewsletterError(
            "The hosted studio needs at least one user to log in, and there is none yet.",
            hint="Add yourself first: `newsletter users add you@example.org --role admin`.")
    app = hosted_app(project, database, secret, extra_hosts=allowed_hosts)
    console.print(f"The hosted studio for [bold]{project.config.name}[/] listens on "
                  f"{host}:{port}; people log in. Put it behind HTTPS (docs/studio.md).")
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=True,
                server_header=False)


COMMANDS: list[click.Command] = [studio_command]
