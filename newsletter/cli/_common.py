"""Shared pieces of the command line: consoles, error printing, finding the project."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from ..errors import NewsletterError
from ..project import Project, find_project

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def print_error(exc: NewsletterError) -> None:
    """Print an error and the next step to stderr."""
    err_console.print(f"[bold red]Error:[/] {escape(exc.message)}", markup=True, soft_wrap=True)
    if exc.hint:
        err_console.print(f"[bold]Next:[/] {escape(exc.hint)}", markup=True, soft_wrap=True)


def current_project() -> Project:
    """The project named by --project, or found from the current folder upwards."""
    ctx = click.get_current_context()
    start: Path | None = (ctx.find_root().obj or {}).get("project_dir")
    return find_project(start)
