"""report: what readers did with an issue, or a list's health over time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from ..errors import NewsletterError
from ..files import atomic_write
from ..reports import IssueReport, ListHealth, issue_report, list_health
from ..reports.export import stories_csv
from ._common import console, current_project


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _show_issue(report: IssueReport) -> None:
    f = report.figures
    console.print(f"[bold]{escape(f.subject or f.issue)}[/] — issue {escape(f.issue)} to "
                  f"list {escape(f.list_slug)}, sent {f.sent_at[:16].replace('T', ' ')} UTC")
    for note in report.notes:
        console.print(f"[yellow]{escape(note)}[/]", soft_wrap=True)
    people = f.source == "webhook"
    table = Table(title="The figures", title_justify="left")
    table.add_column("Figure")
    table.add_column("Value", justify="right")
    for label, value in [
        ("Recipients", f"{f.recipients:,}" + (
            f"\n  not sent: {f.not_sent:,} (addresses refused for good; `newsletter status` "
            "names them)" if f.not_sent else "")),
        ("Delivered", f"{f.delivered:,}"),
        ("Bounced (hard / blocked / soft)", f"{f.bounced_hard:,} / {f.blocked:,} / "
         f"{f.bounced_soft:,}"),
        ("Opened (people)" if people else "Opens", f"{f.opens:,} ({_pct(f.open_rate)})"),
        ("Machine opens", f"{f.machine_opens:,}"),
        ("Clicked (people)" if people else "Clicks", f"{f.clicks:,}"),
        ("Click rate", _pct(f.click_rate)), ("Click-to-open rate", _pct(f.click_to_open)),
        ("Unsubscribed", f"{f.unsubscribes:,}" + "".join(
            f"\n  {escape(reason)}: {n:,}" for reason, n in f.unsubscribe_reasons.items())),
        ("Spam reports", f"{f.spam_reports:,}"),
    ]:
        table.add_row(label, value)
    console.print(table)
    if any(s.clicks for s in report.stories):
        stories = Table(title="Which stories people read (most-read first)",
                        title_justify="left")
        for name, justify in (("#", "right"), ("Story", "left"), ("Readers", "right"),
                              ("Clicks", "right")):
            stories.add_column(name, justify=justify)  # type: ignore[arg-type]
        for s in report.stories:
            stories.add_row(str(s.index or ""), escape(s.title), f"{s.clickers:,}",
                            f"{s.clicks:,}")
        console.print(stories)
    if report.previous:
        previous = Table(title="Beside the previous issues", title_justify="left")
        for name in ("Issue", "Delivered", "Open rate", "Click rate", "Unsubscribed"):
            previous.add_column(name, justify="left" if name == "Issue" else "right")
        for r in report.previous + [f]:
            label = escape(r.issue) + (" (this one)" if r is f else "")
            previous.add_row(label, f"{r.delivered:,}", _pct(r.open_rate), _pct(r.click_rate),
                             f"{r.unsubscribes:,}")
        console.print(previous)
    _show_growth(report.weeks)


def _show_growth(weeks: list[Any]) -> None:
    joined, left = sum(w.joined for w in weeks), sum(w.left for w in weeks)
    bounced = sum(w.bounced for w in weeks)
    console.print(f"List growth over {len(weeks)} weeks: {joined:,} joined, {left:,} left, "
                  f"{bounced:,} bounced, net {joined - left - bounced:+,}")


def _show_list(health: ListHealth) -> None:
    console.print(f"[bold]List {escape(health.list_slug)}[/]: {health.members:,} members now")
    if health.per_reader:
        console.print(f"Opened or clicked any of the last {len(health.issues)} issues: "
                      f"{health.readers:,} ({_pct(health.reader_share)}); opened none: "
                      f"{health.never_opened:,} (candidates for a re-engagement email)")
    else:
        console.print('newsletter.toml says privacy = "aggregate": who opened is not kept.')
    _show_growth(health.weeks)


@click.command("report")
@click.argument("issue_file", required=False,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--list", "list_slug", metavar="SLUG",
              help="The list the issue went to (needed if it went to several); without "
              "FILE: that list's health over time.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained HTML report (charts included) to this file.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON instead.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the per-story table as CSV (for spreadsheets).")
@click.option("--weeks", default=26, show_default=True, type=click.IntRange(1, 520),
              help="Weeks of list growth to show.")
def report_command(issue_file: Path | None, list_slug: str | None, output: Path | None,
                   as_json: bool, csv_path: Path | None, weeks: int) -> None:
    """What readers did: opens, clicks per story, the first 72 hours, list growth.

    \b
    Examples:
      newsletter report issues/2026-11-30.yaml
      newsletter report issues/2026-11-30.yaml -o report.html --csv stories.csv
      newsletter report --list weekly --weeks 26
    """
    project = current_project()
    if issue_file is None and not list_slug:
        raise NewsletterError("Say which issue or list to report on.",
                              hint="Run `newsletter report issues/FILE.yaml`, or "
                              "`newsletter report --list weekly` for a list's health.")
    report: IssueReport | ListHealth
    if issue_file is not None:
        report = issue_report(project, issue_file, list_slug, weeks=weeks)
    else:
        report = list_health(project, str(list_slug), weeks)
    if csv_path is not None:
        if not isinstance(report, IssueReport):
            raise NewsletterError("--csv writes the per-story table of an issue.",
                                  hint="Give the issue file too: `newsletter report FILE "
                                  "--csv stories.csv`.")
        atomic_write(csv_path, stories_csv(report.stories).encode("utf-8"))
    if output is not None:
        # Imported here to save start-up time: matplotlib is only needed for -o.
        from ..reports import html

        html.write_html(output, html.render_issue_report(report, project.config.name)
                        if isinstance(report, IssueReport)
                        else html.render_list_health(report, project.config.name))
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        return
    if isinstance(report, IssueReport):
        _show_issue(report)
    else:
        _show_list(report)
    for path, what in ((output, "HTML report"), (csv_path, "stories CSV")):
        if path is not None:
            console.print(f"Wrote the {what} to {escape(str(path))}")


COMMANDS: list[click.Command] = [report_command]
