"""studio: compose, preview, check and send from the browser."""

from __future__ import annotations

import click

from ..errors import NewsletterError
from ._common import console, current_project

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@click.command("studio")
@click.option("--port", default=8700, show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Only this computer (127.0.0.1) for now.")
def studio_command(port: int, host: str) -> None:
    """Open the studio: write, check, preview and send issues in your browser.

    \b
    It runs on this computer only, for you: open the address it prints.
    Every change is saved into the issue's YAML file; `newsletter check`
    and `newsletter send` see the same thing the studio shows.
    \b
    Example:
      newsletter studio            then open http://127.0.0.1:8700/
    """
    if host not in LOOPBACK:
        raise NewsletterError(
            f"The studio can only listen on this computer (127.0.0.1), not {host}: "
            "hosted mode needs login, which is not available yet.",
            hint="Run `newsletter studio` without --host and open http://127.0.0.1:"
            f"{port}/ on this computer.",
        )
    # Imported here to keep `newsletter --help` fast: the studio pulls in Starlette.
    import uvicorn

    from ..studio import create_app

    project = current_project()
    app = create_app(project.root)
    console.print(f"The studio for [bold]{project.config.name}[/] is at "
                  f"http://127.0.0.1:{port}/ (Ctrl-C stops it)")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


COMMANDS: list[click.Command] = [studio_command]
