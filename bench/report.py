"""Benchmark: `newsletter report` for a 1,000,000-recipient campaign with 3,000,000 events.

    .venv/bin/python bench/report.py                        # SQLite
    .venv/bin/python bench/report.py --url postgresql+psycopg://...   # PostgreSQL (a fresh schema)

The data is made with bulk inserts straight into the tables the webhook fills (as if
3,000,000 events had arrived: processed, delivered, opens, Apple machine opens, clicks on
8 stories, bounces, unsubscribes), plus 1,000,000 subscribers on one list with their
history, and 8 earlier campaigns. Then the report (figures, click map, 72 hours, previous
issues, 26 weeks of growth) is computed 3 times and the median printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _machine import machine  # bench/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from newsletter.delivery.models import Campaign  # noqa: E402
from newsletter.issue import load_issue  # noqa: E402
from newsletter.project import init_project  # noqa: E402
from newsletter.reports import build  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="database URL (default: a SQLite file in a temp folder)")
    parser.add_argument("--recipients", type=int, default=RECIPIENTS)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        project = init_project(folder / "p", "Bench")
        shutil.copyfile(REPO / "issues" / "2021-02-01.yaml", project.issues_dir / "2021-02-01.yaml")
        issue = project.issues_dir / "2021-02-01.yaml"
        url = args.url or f"sqlite:///{folder / 'bench.db'}"
        (project.root / "newsletter.toml").write_text(
            (project.root / "newsletter.toml").read_text(encoding="utf-8")
            + f'\n[database]\nurl = "{url}"\n', encoding="utf-8")
        make_data(url, args.recipients, [i.url for i in load_issue(issue).items])
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            report = build.issue_report(project, issue, "weekly")
            times.append(time.perf_counter() - started)
        f = report.figures
        print(f"- Machine: {machine()}; database: {url.split(':', 1)[0]}")
        median = statistics.median(times)
        print(f"- {args.recipients:,} recipients: report in median {median:.2f} s "
              f"(runs: {', '.join(f'{t:.2f}' for t in times)}); {f.opens:,} openers, "
              f"{f.clicks:,} clickers, {len(report.previous)} previous issues")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
