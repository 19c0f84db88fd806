"""``python -m newsletter.migrations ARGS``: the alembic command line, configured from code."""

from __future__ import annotations

import os
import sys

from alembic.config import CommandLine

from ..dbengine import normalise_url
from ..project import DATABASE_ENV
from . import alembic_config


def main(argv: list[str] | None = None) -> None:
    """Run an Alembic command against NEWSLETTER_DATABASE_URL or the project's database."""
    cli = CommandLine(prog="python -m newsletter.migrations")
    options = cli.parser.parse_args(argv)
    if not hasattr(options, "cmd"):
        cli.parser.error("too few arguments")
    url = os.environ.get(DATABASE_ENV)
    if not url:
        # The project's own choice of database (with its password rules) is made by the
        # store, which this developer tool may not import: name the database explicitly.
        cli.parser.error(f"set {DATABASE_ENV}; for a project's own database use "
                         "`newsletter db status` and `newsletter db upgrade`")
    cli.run_cmd(alembic_config(normalise_url(url)), options)


if __name__ == "__main__":
    main(sys.argv[1:])
