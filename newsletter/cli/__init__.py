"""The `newsletter` command: a thin shell over the library.

Each area keeps its commands in its own module and lists them in ``COMMANDS``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from .. import __version__
from ..errors import NewsletterError
from ..store.database import announce_to
from . import (
    archive,
    compose,
    db,
    issue_commands,
    preflight,
    report,
    send,
    studio,
    subscribers,
    users,
    web,
)
from ._common import err_console, print_error


class _Group(click.Group):
    """Turns NewsletterError into a readable message (never a traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NewsletterError as exc:
            print_error(exc)
            sys.exit(exc.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="newsletter")
@click.option(
    "--project",
    "-C",
    type=click.Path(file_okay=False, path_type=Path),
    help="The newsletter project folder (default: the one holding newsletter.toml, "
    "found from the current folder upwards).",
)
@click.pass_context
def main(ctx: click.Context, project: Path | None) -> None:
    """Write, check, preview, send and archive a weekly email newsletter.

    \b
    The weekly routine:
      newsletter new                       start next week's issue file
      newsletter check issues/FILE.yaml    find every problem at once
      newsletter preview issues/FILE.yaml  see it at desktop and phone width
      newsletter send issues/FILE.yaml --test you@example.org
      newsletter send issues/FILE.yaml --list weekly
    """
    ctx.obj = {"project_dir": project}
    announce_to(lambda line: err_console.print(line, style="dim", soft_wrap=True, markup=False))
    ctx.call_on_close(lambda: announce_to(None))


for _module in (issue_commands, subscribers, send, archive, web, compose, report, studio,
                preflight, users, db):
    for _command in _module.COMMANDS:
        main.add_command(_command)
