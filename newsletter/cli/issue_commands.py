"""Commands for starting, checking, previewing and building issues."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click
from rich.markup import escape

from .. import issue as issue_module
from .. import pipeline, project
from ..emails import InvalidEmail, normalise_email
from ..errors import NewsletterError
from ._common import console, current_project, err_console


def _at_terminal() -> bool:
    """Whether a person is typing (init asks its questions only then)."""
    return sys.stdin.isatty()


_QUESTIONS = (
    ("name", "Newsletter name"),
    ("postal_address", "Your organisation's postal address (the law requires it in every "
     "email)"),
    ("description", "One sentence about the newsletter"),
    ("from_name", "Sender name people see in their inbox"),
    ("from_email", "Sender email address"),
)


def _email(value: str) -> str:
    """An email address, or click.BadParameter saying what is wrong (click asks again)."""
    if not value.strip():
        return ""
    try:
        return normalise_email(value)
    except InvalidEmail as exc:
        raise click.BadParameter(f"{value!r} is not an email address: {exc}") from None


def _email_option(_ctx: click.Context, _param: click.Parameter, value: str | None
                  ) -> str | None:
    return _email(value) if value else value


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="The newsletter's name (default: from the folder name).")
@click.option("--address", "postal_address", metavar="TEXT",
              help="Your organisation's postal address (shown in every email's footer).")
@click.option("--description", metavar="TEXT", help="One sentence about the newsletter.")
@click.option("--from-name", metavar="TEXT", help="The sender name people see.")
@click.option("--from-email", metavar="ADDRESS", callback=_email_option,
              help="The address the newsletter comes from.")
def init_command(directory: Path, name: str | None, postal_address: str | None,
                 description: str | None, from_name: str | None,
                 from_email: str | None) -> None:
    """Create a new newsletter project in DIRECTORY.

    At a terminal it asks who the newsletter is from; scripts give the answers
    as options. What is not answered is written as a "CHANGE ME" placeholder,
    and `newsletter send` will not send to a list through SendGrid until it is
    replaced. The project gets a commented newsletter.toml and an example issue
    (a draft). The email templates stay in the package; copy the ones you want
    to change with `newsletter templates copy NAME`.

    \b
    Example:
      newsletter init my-brief --name "My Brief" --address "Street 1, 10115 Berlin" \\
        --description "News every Monday." --from-name "My Brief" --from-email news@my.org
    """
    answers = {"name": name, "postal_address": postal_address, "description": description,
               "from_name": from_name, "from_email": from_email}
    if _at_terminal():
        default_name = directory.resolve().name.replace("-", " ").title()
        for key, question in _QUESTIONS:
            if answers[key] is None:
                default = default_name if key == "name" else ""
                answer = click.prompt(question, default=default, show_default=bool(default),
                                      value_proc=_email if key == "from_email" else None)
                answers[key] = answer.strip() or None
    identity = project.Identity(**{k: v or "" for k, v in answers.items()})
    created = project.init_project(directory, answers["name"], identity=identity)
    console.print(f"Created a newsletter in [bold]{escape(str(created.root))}[/].")
    missing = project.placeholder_settings(created.config)
    if missing:
        console.print("[yellow]Still to fill in newsletter.toml[/] (sends to a list through "
                      "SendGrid are refused until then):")
        for problem in missing:
            console.print(f"  - {escape(problem)}", soft_wrap=True)
    console.print("Next: look through newsletter.toml, then run")
    console.print(f"  cd {escape(str(directory))} && newsletter check issues/*.yaml",
                  soft_wrap=True)


@click.command("new")
@click.option(
    "--date",
    "date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Date of the new issue, YYYY-MM-DD (default: today).",
)
def new_command(date: dt.datetime | None) -> None:
    """Start a new issue file in issues/, dated today (or --date) and numbered in order."""
    proj = current_project()
    path = pipeline.new_issue(proj, date.date() if date else None)
    shown = path.relative_to(proj.root)
    console.print(f"Created [bold]{escape(str(shown))}[/].")
    console.print(f"Next: fill in the TODOs, then run `newsletter check {escape(str(shown))}`.")


def _project_of(path: Path) -> project.Project:
    """The project an issue file belongs to: -C if given, else found from the file's folder.

    So `newsletter check ../other/issues/X.yaml` uses the other project's settings
    and templates, from anywhere.
    """
    if (click.get_current_context().find_root().obj or {}).get("project_dir"):
        return current_project()
    try:
        return project.find_project_for(path)
    except NewsletterError:
        return current_project()


@click.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def check_command(files: tuple[Path, ...]) -> None:
    """Check issue FILES and report every problem at once.

    Each problem is printed as FILE:LINE:COLUMN: FIELD: what is wrong. Exits 1
    when there are errors; warnings alone exit 0.
    """
    errors = warnings = 0
    for path in files:
        result = pipeline.check_issue(_project_of(path), path)
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
    result = pipeline.build_issue(_project_of(file), file, out_dir)
    for path in (result.html, result.text, result.eml):
        console.print(f"  wrote {path}", markup=False)
    for problem in result.problems:
        err_console.print(f"{file}: {problem}", style="red", markup=False, soft_wrap=True)
    if result.problems:
        err_console.print("`newsletter send` refuses this issue until the template is fixed.",
                          markup=False)
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
    If PORT is in use, the next free port is taken (and named).
    """
    from ..preview import listening_socket, serve_preview

    proj = _project_of(file)
    sock = listening_socket(host, port)
    chosen = sock.getsockname()[1]
    if chosen != port:
        console.print(f"Port {port} is in use (another preview?), so this one uses {chosen}.",
                      markup=False)
    console.print(f"Previewing {file} at http://{host}:{chosen}/  (Ctrl-C to stop)",
                  markup=False)
    serve_preview(proj, file, sock)


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
