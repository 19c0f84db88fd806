"""The `newsletter` command: a thin shell over the library.

Each area keeps its commands in its own module and lists them in ``COMMANDS``. A
module is imported only when one of its commands runs (`newsletter --help` and
`newsletter check` need neither the database nor the web service), so the table
below names each command's module and the line `newsletter --help` shows for it;
tests/test_cli_startup.py keeps that line the same as the command's own help.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import click

from .. import __version__
from ..announce import announce_to
from ..errors import NewsletterError
from ._common import err_console, print_error

# command -> (module in newsletter.cli, its one-line help), in the order --help lists them
COMMAND_TABLE: dict[str, tuple[str, str]] = {
    "init": ("issue_commands", "Create a new newsletter project in DIRECTORY."),
    "new": ("issue_commands",
            "Start a new issue file in issues/, dated today (or --date) and numbered in order."),
    "add": ("compose", "Add a story to issue FILE for each URL, filled in from the article's "
            "page."),
    "check": ("issue_commands", "Check issue FILES and report every problem at once."),
    "preview": ("issue_commands", "Serve FILE's email on localhost: desktop and phone width "
                "side by side, and the text."),
    "preflight": ("preflight", "Check the email ISSUE_FILE makes, as a subscriber will get it."),
    "build": ("issue_commands", "Render FILE into NAME.html, NAME.txt and NAME.eml (open the "
              ".eml in any mail app)."),
    "studio": ("studio", "Open the studio: write, check, preview and send issues in your "
               "browser."),
    "send": ("send", "Send ISSUE_FILE to every subscribed member of a list."),
    "status": ("send", "Show every send (of ISSUE_FILE, if given): when it started and "
               "finished, and its batches and recipients per state."),
    "cancel": ("send", "Cancel a send scheduled with `newsletter send --at` (until 10 minutes "
               "before)."),
    "report": ("report", "What readers did: opens, clicks per story, the first 72 hours, list "
               "growth."),
    "lists": ("subscribers", "Show the mailing lists and how many people are on each."),
    "subscribers": ("subscribers", "Add, remove, look up, import and export subscribers."),
    "archive": ("archive", "Publish past issues as a website, with a feed and search."),
    "serve": ("web", "Run the web service: sign-up, unsubscribe, SendGrid's webhook and the "
              "archive."),
    "users": ("users", "Who may log in to the hosted studio, and what they may do."),
    "audit": ("users", "Show who saved, tested, scheduled, sent, cancelled, imported and "
              "exported what."),
    "db": ("db", "The subscriber database: its schema, upgrades, and moving it."),
    "schema": ("issue_commands", "Print the JSON Schema of issue files (for editor "
               "autocompletion and checks)."),
    "templates": ("issue_commands", "List the email templates, and which ones your project "
                  "overrides."),
}


class _Group(click.Group):
    """Loads each command when it runs; turns NewsletterError into a readable message
    (never a traceback)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMAND_TABLE)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMAND_TABLE:
            return None
        module = importlib.import_module(f"{__name__}.{COMMAND_TABLE[cmd_name][0]}")
        return next(c for c in module.COMMANDS if c.name == cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_line) for name, (_module, help_line) in COMMAND_TABLE.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

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
