"""Shared pieces of the command line: consoles, error printing, finding the project."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.markup import escape

from ..errors import NewsletterError

if TYPE_CHECKING:
    from ..project import Project

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def print_error(exc: NewsletterError) -> None:
    """Print an error and the next step to stderr."""
    err_console.print(f"[bold red]Error:[/] {escape(exc.message)}", markup=True, soft_wrap=True)
    if exc.hint:
        err_console.print(f"[bold]Next:[/] {escape(exc.hint)}", markup=True, soft_wrap=True)


def current_project() -> Project:
    """The project named by --project, or found from the current folder upwards."""
    # Imported here: reading newsletter.toml loads pydantic, which `--help` does not need.
    from ..project import find_project

    ctx = click.get_current_context()
    start: Path | None = (ctx.find_root().obj or {}).get("project_dir")
    return find_project(start)
