"""Benchmark: `newsletter report` for a 1,000,000-recipient campaign with 3,000,000 events.

    .venv/bin/python bench/report.py                  # SQLite
    .venv/bin/python bench/report.py --database-url postgresql+psycopg://u:p@host/db
                                                      # SQLite and PostgreSQL side by side

The data is made with bulk inserts straight into the tables the webhook fills (as if
3,000,000 events had arrived: processed, delivered, opens, Apple machine opens, clicks on
8 stories, bounces, unsubscribes), plus 1,000,000 subscribers on one list with their
history, and 8 earlier campaigns. On PostgreSQL it goes into a schema of its own
(bench_report), dropped afterwards.

Measured on each database, medians of ``--runs``:
- the first report after the data arrived (it folds the 1,000,000 history rows into the
  per-day counts and counts the unique readers, once);
- the report's work (``issue_report``: figures, click map, 72 hours, previous issues,
  26 weeks of growth) in this process;
- drawing the HTML report (4 SVG charts with matplotlib) and the JSON, in this process;
- the whole command as a user runs it (a new process: start-up, report, output) for the
  terminal table, ``--json`` and ``-o report.html``;
- floors in the same run: ``SELECT count(*) FROM reader_events`` and
  ``newsletter --version`` (a process that starts and imports nothing of the store).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _machine import machine  # bench/ is on sys.path when run as a script
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from newsletter.delivery.models import Campaign  # noqa: E402
from newsletter.issue import load_issue  # noqa: E402
from newsletter.project import init_project  # noqa: E402
from newsletter.reports import build, html  # noqa: E402
from newsletter.store import create_list, open_database  # noqa: E402

RECIPIENTS = 1_000_000
CHUNK = 50_000


def insert(connection, table: str, columns: tuple[str, ...], rows) -> None:  # type: ignore[no-untyped-def]
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == CHUNK:
            connection.exec_driver_sql(sql, batch)
            batch = []
    if batch:
        connection.exec_driver_sql(sql, batch)


def make_data(url: str, recipients: int, issue_urls: list[str]) -> int:
    db = open_database(url)
    rng = random.Random(1)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    sent = now - dt.timedelta(days=4)
    stamp = sent.isoformat(sep=" ") if db.engine.dialect.name == "sqlite" else sent
    with db.transaction() as session:
        list_id = create_list(session, "weekly", "Weekly").id
        for weeks in range(8, 0, -1):
            session.add(Campaign(issue_name=f"old-{weeks}", list_slug="weekly",
                                 transport="sendgrid", status="sent", recipient_count=recipients,
                                 created_at=now - dt.timedelta(weeks=weeks)))
        campaign = Campaign(issue_name="2021-02-01", list_slug="weekly", transport="sendgrid",
                            status="sent", recipient_count=recipients, created_at=sent)
        session.add(campaign)
        session.flush()
        campaign_id = campaign.id
    started = time.perf_counter()
    with db.engine.begin() as connection:
        day = lambda: stamp  # noqa: E731
        insert(connection, "subscribers", ("id", "email", "email_key", "name", "attributes",
                                           "status", "status_changed_at", "created_at"),
               ((i, f"p{i}@example.org", f"p{i}@example.org", "", "{}", "active", day(), day())
                for i in range(1, recipients + 1)))
        insert(connection, "memberships", ("subscriber_id", "list_id", "status", "changed_at",
                                           "how", "created_at"),
               ((i, list_id, "subscribed", day(), "import", day())
                for i in range(1, recipients + 1)))
        insert(connection, "subscriber_history", ("subscriber_id", "list_id", "at", "old_status",
                                                  "new_status", "source", "detail"),
               ((i, list_id, day(), None, "subscribed", "import", "")
                for i in range(1, recipients + 1)))
        counts = {"processed": recipients, "delivered": recipients - 15_000, "bounce": 10_000,
                  "blocked": 5_000, "open": 0, "machine_open": 0, "click": 0}
        rows = []
        links = list(range(1, len(issue_urls) + 1))
        for sid in range(1, recipients + 1):
            if rng.random() < 0.3:
                n = rng.randint(1, 3)
                counts["open"] += n
                rows.append((campaign_id, "open", 0, sid, stamp, n))
            if rng.random() < 0.25:
                counts["machine_open"] += 1
                rows.append((campaign_id, "machine_open", 0, sid, stamp, 1))
            if rng.random() < 0.08:
                for link in set(rng.choices(links, k=2)):
                    counts["click"] += 1
                    rows.append((campaign_id, "click", link, sid, stamp, 1))
        insert(connection, "reader_events", ("campaign_id", "kind", "link_id", "subscriber_id",
                                             "first_at", "count"), rows)
        counts["deferred"] = 3_000_000 - sum(counts.values())  # the rest of the 3M events
        insert(connection, "campaign_links", ("id", "campaign_id", "url", "clicks"),
               [(link, campaign_id, issue_urls[link - 1],
                 sum(1 for r in rows if r[1] == "click" and r[2] == link)) for link in links])
        hour0 = int(sent.replace(tzinfo=dt.UTC).timestamp()) // 3600
        insert(connection, "campaign_hour_counts", ("campaign_id", "kind", "hour", "count"),
               [(campaign_id, kind, hour0 + h, counts[kind] // 72)
                for kind in ("open", "machine_open", "click") for h in range(72)])
        insert(connection, "campaign_event_counts", ("campaign_id", "event", "count"),
               [(campaign_id, k, v) for k, v in counts.items()])
    print(f"data: {len(rows):,} reader rows for {sum(counts.values()):,} events, "
          f"made in {time.perf_counter() - started:.0f} s", flush=True)
    db.dispose()
    return campaign_id


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _timed(function, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


def _command(root: Path, url: str, *arguments: str) -> float:
    """Wall seconds of one `newsletter ...` process, as a user runs it."""
    env = {**os.environ, "NEWSLETTER_DATABASE_URL": url}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "newsletter", "-C", str(root), *arguments], env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


def postgres_url(base: str) -> str:
    """``base`` with search_path set to a fresh schema bench_report."""
    engine = create_engine(base)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS bench_report CASCADE"))
        connection.execute(text("CREATE SCHEMA bench_report"))
    engine.dispose()
    url = make_url(base).update_query_dict({"options": "-csearch_path=bench_report"})
    return url.render_as_string(hide_password=False)


def drop_postgres_schema(base: str) -> None:
    engine = create_engine(base)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS bench_report CASCADE"))
    engine.dispose()


def measure(url: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Make the data in ``url``, then time the report in every way it is used."""
    folder.mkdir(parents=True)
    project = init_project(folder / "p", "Bench")
    issue = project.issues_dir / "2021-02-01.yaml"
    shutil.copyfile(REPO / "issues" / "2021-02-01.yaml", issue)
    os.environ["NEWSLETTER_DATABASE_URL"] = url  # not newsletter.toml: it may hold a password
    make_data(url, args.recipients, [i.url for i in load_issue(issue).items])
    found: dict[str, Any] = {"load_before": os.getloadavg()[0]}
    found["first"] = _timed(lambda: build.issue_report(project, issue, "weekly"), 1)[0]
    report = build.issue_report(project, issue, "weekly")
    found["report"] = _timed(lambda: build.issue_report(project, issue, "weekly"), args.runs)
    found["html"] = _timed(lambda: html.render_issue_report(report, "Bench"), args.runs)
    found["json"] = _timed(lambda: json.dumps(report.as_dict()), args.runs)
    db = open_database(url)
    with db.engine.connect() as connection:
        found["count"] = _timed(lambda: connection.exec_driver_sql(
            "SELECT count(*) FROM reader_events").scalar_one(), args.runs)
    db.dispose()
    out = folder / "report.html"
    cli: dict[str, list[float]] = {"table": [], "json": [], "html": [], "version": []}
    for _ in range(args.runs):  # interleaved, so that a busy moment hits all alike
        cli["version"].append(_command(project.root, url, "--version"))
        cli["table"].append(_command(project.root, url, "report", str(issue), "--list",
                                     "weekly"))
        cli["json"].append(_command(project.root, url, "report", str(issue), "--list", "weekly",
                                    "--json"))
        cli["html"].append(_command(project.root, url, "report", str(issue), "--list", "weekly",
                                    "-o", str(out)))
    found["cli"] = cli
    found["load_after"] = os.getloadavg()[0]
    f = report.figures
    found["summary"] = (f"{f.opens:,} openers, {f.clicks:,} clickers, "
                        f"{len(report.previous)} previous issues, {len(report.weeks)} weeks")
    return found


def _cell(times: list[float]) -> str:
    return f"{_median(times):.3f} ({', '.join(f'{t:.2f}' for t in times)})"


def print_table(results: dict[str, dict[str, Any]]) -> None:
    names = list(results)
    print(f"- Machine: {machine()}")
    for name, found in results.items():
        print(f"- {name}: {found['summary']}; load {found['load_before']:.1f} → "
              f"{found['load_after']:.1f}")
    print()
    print("| seconds, median (runs) | " + " | ".join(names) + " |")
    print("| --- |" + " ---: |" * len(names))
    rows = [
        ("first report after the data arrived (folds, counts: once)",
         lambda f: f"{f['first']:.3f}"),
        ("**report's work** (`issue_report`, in-process)", lambda f: _cell(f["report"])),
        ("HTML: 4 charts + page (in-process)", lambda f: _cell(f["html"])),
        ("JSON (in-process)", lambda f: _cell(f["json"])),
        ("`newsletter report FILE` (whole process)", lambda f: _cell(f["cli"]["table"])),
        ("`newsletter report FILE --json` (whole process)", lambda f: _cell(f["cli"]["json"])),
        ("`newsletter report FILE -o report.html` (whole process)",
         lambda f: _cell(f["cli"]["html"])),
        ("floor: `SELECT count(*) FROM reader_events`", lambda f: _cell(f["count"])),
        ("floor: `newsletter --version` (whole process)", lambda f: _cell(f["cli"]["version"])),
    ]
    for label, show in rows:
        print(f"| {label} | " + " | ".join(show(results[n]) for n in names) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="also measure this PostgreSQL database "
                        "(in a schema bench_report, dropped afterwards)")
    parser.add_argument("--recipients", type=int, default=RECIPIENTS)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    folder = Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        results["SQLite"] = measure(f"sqlite:///{folder / 'bench.db'}", folder / "sqlite", args)
        print(f"SQLite done: report {_median(results['SQLite']['report']):.3f} s", flush=True)
        if args.database_url:
            try:
                url = postgres_url(args.database_url)
                results["PostgreSQL"] = measure(url, folder / "postgresql", args)
            finally:
                drop_postgres_schema(args.database_url)
        print_table(results)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
