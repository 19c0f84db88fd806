"""Commands for the hosted studio's accounts and its audit log: a thin shell over the store."""

from __future__ import annotations

import datetime as dt
import getpass
import sys

import click
from rich.markup import escape
from rich.table import Table

from ..errors import NewsletterError
from ..store import ROLES, Database, audit_entries, open_project_database, record_action
from ..store.users import add_user, list_users, remove_user, set_password, set_role
from ._common import console, current_project

_ROLE_HELP = ("editor: writes issues and sends tests; sender: also sends to lists and "
              "schedules; admin: also manages users and subscribers.")


def _database() -> Database:
    return open_project_database(current_project())


def command_line_actor() -> str:
    """Who did it, for the audit log, when it was done at the command line."""
    try:
        name = getpass.getuser()
    except Exception:  # no user name in this environment (some containers)
        name = "unknown"
    return f"{name} (command line)"


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password (at least 12 characters)", hide_input=True,
                            confirmation_prompt="Type it again"))


_STDIN_OPTION = click.option(
    "--password-stdin", is_flag=True,
    help="Read the password from the first line of standard input instead of asking.")


@click.group("users")
def users_group() -> None:
    """Who may log in to the hosted studio, and what they may do.

    \b
    Roles:
      editor   writes issues and sends tests
      sender   also sends to lists, schedules and cancels
      admin    also manages users and subscribers
    \b
    Examples:
      newsletter users add ann@example.org --role editor
      newsletter users list
      newsletter users set-role ann@example.org sender
      newsletter users remove ann@example.org
    """


@users_group.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True, help=_ROLE_HELP)
@_STDIN_OPTION
def users_add(email: str, role: str, password_stdin: bool) -> None:
    """Let EMAIL log in to the studio with ROLE; asks for their password twice."""
    password = _password(password_stdin)
    with _database().transaction() as session:
        user = add_user(session, email, password, role)
        record_action(session, command_line_actor(), "user added", user.email, f"role {role}")
        address = user.email
    console.print(f"[bold]{escape(address)}[/] may now log in to the studio as {role}. "
                  "Give them the password by a different way than the address of the studio.")


@users_group.command("list")
def users_list() -> None:
    """Show every studio user with their role and last login."""
    with _database().transaction() as session:
        users = list_users(session)
        table = Table(title="Studio users")
        for heading in ("Email", "Role", "Added (UTC)", "Last login (UTC)"):
            table.add_column(heading)
        for user in users:
            table.add_row(escape(user.email), user.role, f"{user.created_at:%Y-%m-%d %H:%M}",
                          f"{user.last_login_at:%Y-%m-%d %H:%M}" if user.last_login_at
                          else "never")
    if not users:
        console.print("No studio users yet. Add one with "
                      "`newsletter users add EMAIL --role admin`.")
        return
    console.print(table)


@users_group.command("remove")
@click.argument("email")
def users_remove(email: str) -> None:
    """Stop EMAIL from logging in; their open sessions end at once."""
    with _database().transaction() as session:
        address = remove_user(session, email)
        record_action(session, command_line_actor(), "user removed", address)
    console.print(f"{escape(address)} can no longer log in to the studio.")


@users_group.command("set-role")
@click.argument("email")
@click.argument("role", type=click.Choice(ROLES))
def users_set_role(email: str, role: str) -> None:
    """Give EMAIL another ROLE (editor, sender or admin); they log in again."""
    with _database().transaction() as session:
        user = set_role(session, email, role)
        record_action(session, command_line_actor(), "role changed", user.email, f"to {role}")
        address = user.email
    console.print(f"{escape(address)} is now {role}.")


@users_group.command("set-password")
@click.argument("email")
@_STDIN_OPTION
def users_set_password(email: str, password_stdin: bool) -> None:
    """Give EMAIL a new password (when they forgot theirs); they log in again."""
    password = _password(password_stdin)
    with _database().transaction() as session:
        user = set_password(session, email, password)
        record_action(session, command_line_actor(), "password changed", user.email)
        address = user.email
    console.print(f"{escape(address)} has a new password.")


def _since(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise NewsletterError(f"--since {value!r} is not a date; write it as YYYY-MM-DD, "
                              "like 2026-01-31.") from None
    return dt.datetime.combine(day, dt.time(), dt.UTC)


@click.command("audit")
@click.option("--since", metavar="DATE", help="Only what happened on or after DATE (YYYY-MM-DD).")
@click.option("--user", "actor", metavar="EMAIL", help="Only what this person did.")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 100_000),
              help="Show at most this many entries, newest first.")
def audit_command(since: str | None, actor: str | None, limit: int) -> None:
    """Show who saved, tested, scheduled, sent, cancelled, imported and exported what.

    \b
    Examples:
      newsletter audit --since 2026-01-01
      newsletter audit --user ann@example.org
    """
    start = _since(since)
    with _database().transaction() as session:
        entries = audit_entries(session, since=start, actor=actor, limit=limit)
        table = Table(title="Audit log (newest first)")
        for heading in ("When (UTC)", "Who", "What", "Which", "Detail"):
            table.add_column(heading, overflow="fold")
        for entry in entries:
            table.add_row(f"{entry.at:%Y-%m-%d %H:%M:%S}", escape(entry.actor), entry.action,
                          escape(entry.target), escape(entry.detail))
    if not entries:
        console.print("Nothing in the audit log" + (" for that choice." if since or actor
                                                    else " yet."))
        return
    console.print(table)


COMMANDS: list[click.Command] = [users_group, audit_command]
