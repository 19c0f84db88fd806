"""Commands for starting, checking, previewing and building issues."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click

from .. import issue as issue_module
from .. import pipeline, project
from ._common import console, current_project, err_console


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="The newsletter's name (default: from the folder name).")
def init_command(directory: Path, name: str | None) -> None:
    """Create a new newsletter project in DIRECTORY.

    It gets a commented newsletter.toml, the default templates (edit them to
    change the design) and an example issue.
    """
    created = project.init_project(directory, name)
    console.print(f"Created a newsletter in [bold]{created.root}[/].")
    console.print("Next: edit newsletter.toml (name, sender, postal address), then run")
    console.print(f"  cd {directory} && newsletter check issues/*.yaml")


@click.command("new")
@click.option(
    "--date",
    "date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Date of the new issue, YYYY-MM-DD (default: a week after the last issue).",
)
def new_command(date: dt.datetime | None) -> None:
    """Start the next issue file in issues/, numbered and dated after the last one."""
    proj = current_project()
    path = pipeline.new_issue(proj, date.date() if date else None)
    shown = path.relative_to(proj.root)
    console.print(f"Created [bold]{shown}[/].")
    console.print(f"Next: fill in the TODOs, then run `newsletter check {shown}`.")


@click.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def check_command(files: tuple[Path, ...]) -> None:
    """Check issue FILES and report every problem at once.

    Each problem is printed as FILE:LINE:COLUMN: FIELD: what is wrong. Exits 1
    when there are errors; warnings alone exit 0.
    """
    proj = current_project()
    errors = warnings = 0
    for path in files:
        result = pipeline.check_issue(proj, path)
        for diagnostic in result.diagnostics:
            style = "red" if diagnostic.severity == "error" else "yellow"
            console.print(str(diagnostic), style=style, markup=False, soft_wrap=True)
        errors += len(result.errors)
        warnings += len(result.warnings)
        if not result.diagnostics:
            console.print(f"{path}: OK", style="green", markup=False)
    summary = f"{len(files)} file(s): {errors} error(s), {warnings} warning(s)."
    if errors:
        err_console.print(summary, markup=False)
        err_console.print("Next: fix the errors above and run `newsletter check` again.",
                          markup=False)
        sys.exit(1)
    console.print(summary, markup=False)
    if len(files) == 1:
        console.print(f"Next: `newsletter preview {files[0]}` to see it.", markup=False)


@click.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of issue files (for editor autocompletion and checks)."""
    click.echo(json.dumps(issue_module.json_schema(), indent=2, ensure_ascii=False))


@click.command("build")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path),
    default=Path("build"), show_default=True, help="Folder to write the files into.",
)
def build_command(file: Path, out_dir: Path) -> None:
    """Render FILE into NAME.html, NAME.txt and NAME.eml (open the .eml in any mail app)."""
    proj = current_project()
    result = pipeline.build_issue(proj, file, out_dir)
    for path in (result.html, result.text, result.eml):
        console.print(f"  wrote {path}", markup=False)
    console.print(
        f"HTML is {result.rendered.html_bytes / 1024:.0f} KB "
        f"(Gmail clips at {issue_module.GMAIL_CLIP_BYTES // 1024} KB).",
        markup=False,
    )


@click.command("preview")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8025, show_default=True, type=int)
def preview_command(file: Path, host: str, port: int) -> None:
    """Serve FILE's email on localhost: desktop and phone width side by side, and the text.

    The page reloads whenever the issue file, newsletter.toml or a template changes.
    """
    from ..preview import serve_preview

    proj = current_project()
    console.print(f"Previewing {file} at http://{host}:{port}/  (Ctrl-C to stop)", markup=False)
    serve_preview(proj, file, host, port)


@click.group("templates", invoke_without_command=True)
@click.pass_context
def templates_group(ctx: click.Context) -> None:
    """List the email templates, and which ones your project overrides.

    A file in the project's templates/ folder replaces the default of the same
    name. Use `newsletter templates copy NAME` to start from the default.
    """
    if ctx.invoked_subcommand:
        return
    from rich.table import Table

    proj = current_project()
    overridden = project.overridden_templates(proj)
    table = Table("template", "used from")
    for name in project.template_names():
        where = overridden.get(name)
        table.add_row(name, str(where.relative_to(proj.root)) if where else "default")
    console.print(table)


@templates_group.command("copy")
@click.argument("names", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="Replace a file that is already there.")
def templates_copy(names: tuple[str, ...], force: bool) -> None:
    """Copy default templates NAMES into templates/ to edit them."""
    proj = current_project()
    for name in names:
        target = project.copy_template(proj, name, force)
        console.print(f"Copied {name} to {target.relative_to(proj.root)}", markup=False)
    console.print("Next: edit it, then `newsletter preview issues/FILE.yaml` to see the change.",
                  markup=False)


COMMANDS = [init_command, new_command, check_command, schema_command, build_command,
            preview_command, templates_group]
