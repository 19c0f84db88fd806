"""Benchmark: import, export and stream 1,000,000 subscribers on SQLite (and PostgreSQL).

    .venv/bin/python bench/import.py                 # 1M rows, 3 runs of each part
    .venv/bin/python bench/import.py --rows 100000 --runs 1
    .venv/bin/python bench/import.py --database-url postgresql://user:pw@host/db

Generates a realistic, messy Mailchimp-style CSV (bench/out/, git-ignored), then
runs each measurement in a fresh subprocess so that peak memory (ru_maxrss)
belongs to that measurement alone. With ``--database-url`` every run measures
SQLite and then PostgreSQL (in a scratch schema, dropped afterwards), plus the
floor: PostgreSQL's raw ``COPY`` of the same file into a bare table. Prints a
Markdown summary for docs/performance.md ("## Subscriber import").
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from _machine import machine, postgres_schema  # bench/ is on sys.path when run as a script

OUT = Path(__file__).resolve().parent / "out"
FIRST = ["Ann", "Bob", "Carla", "Dmitri", "Eve", "Farid", "Gülnar", "Hiro", "Ines", "José",
         "Kemal", "Lena", "Mehmet", "Nadia", "Omar", "Priya"]
LAST = ["Smith", "Müller", "Okafor", "Chen", "García", "Abdurehim", "Nowak", "Rossi", "Kaya"]
ASCII = str.maketrans({"ü": "ue", "é": "e", "í": "i"})
DOMAINS = ["example.org", "Example.COM", "mail.example.net", "uni.example.edu", "example.de"]


def address(i: int) -> str:
    """The ordinary address of row ``i`` (so duplicates can be made of earlier rows)."""
    local = f"{FIRST[i % 16]}.{LAST[i % 9]}.{i}".lower()
    return f"{local.translate(ASCII)}@{DOMAINS[i % 5]}"


def generate(path: Path, rows: int) -> None:
    """A Mailchimp-like export: ~1% non-ASCII or IDN, ~0.5% invalid, ~1% duplicates."""
    rng = random.Random(20260126)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Email Address", "First Name", "Last Name", "TAGS"])
        for i in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            roll = rng.random()
            if roll < 0.005:
                email = f"{first.lower()}.{i}@exämple-{i % 50}.de"  # IDN domain
            elif roll < 0.01:
                email = f"{first.lower()}{last.lower()}{i}@{rng.choice(DOMAINS)}"  # non-ASCII
            elif roll < 0.015:
                email = f"{first.lower()}.{i}@@{rng.choice(DOMAINS)}"  # invalid
            elif roll < 0.025 and i:
                email = f" {address(rng.randrange(i)).upper()} "  # duplicate, other case
            else:
                email = address(i)
            writer.writerow([email, first, last, "press" if roll > 0.9 else ""])


def copy_floor(url: str, source: Path) -> dict:
    """PostgreSQL's own speed: the CSV file COPYed as it is into a bare table."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    options = parsed.query.get("options", "")
    with psycopg.connect(
        host=parsed.host, port=parsed.port or 5432, user=parsed.username,
        password=parsed.password, dbname=parsed.database,
        options=options if isinstance(options, str) else options[0],
    ) as conn:
        conn.execute("CREATE TABLE copy_floor (email text, first text, last text, tags text)")
        start = time.perf_counter()
        cpu_start = time.process_time()
        with conn.cursor() as cursor, cursor.copy(
                "COPY copy_floor FROM STDIN (FORMAT csv, HEADER true)") as copy, \
                source.open("rb") as handle:
            while block := handle.read(1 << 20):
                copy.write(block)
        conn.commit()
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        rows = conn.execute("SELECT count(*) FROM copy_floor").fetchone()[0]  # type: ignore[index]
        conn.execute("DROP TABLE copy_floor")
    return {"rows": rows, "seconds": seconds, "cpu": cpu}


def child(part: str, url: str, source: Path) -> None:
    """One measurement, in this process; prints JSON."""
    from newsletter.store import create_list, find_list, iter_recipients, open_database
    from newsletter.store.export import export_csv
    from newsletter.store.importer import import_csv

    if part == "copy":
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({**copy_floor(url, source), "peak_mb": peak_mb,
                          "load": os.getloadavg()[0]}))
        return
    database = open_database(url)
    with database.transaction() as session:
        if find_list(session, "weekly") is None:
            create_list(session, "weekly", "Weekly")
    start = time.perf_counter()
    cpu_start = time.process_time()
    if part == "import":
        report = import_csv(database.engine, source, "weekly")
        rows = report.rows
        extra = {"added": report.added, "rejected": report.rejected,
                 "unchanged": report.unchanged}
    elif part == "export":
        with open(os.devnull, "w", newline="", encoding="utf-8") as sink:
            rows = export_csv(database.engine, "weekly", sink)
        extra = {}
    else:
        rows = sum(1 for _ in iter_recipients(database.engine, "weekly", chunk=5000))
        extra = {}
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": rows, "seconds": seconds, "cpu": cpu, "peak_mb": peak_mb,
                      "load": os.getloadavg()[0], **extra}))


def run(part: str, url: str, source: Path) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", part, "--db", url, "--csv", str(source)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


PARTS = ("import", "reimport", "export", "recipients")
LABELS = {"import": "import into an empty database", "reimport": "same file again (no changes)",
          "export": "export CSV", "recipients": "iter_recipients", "copy": "floor: raw COPY "
          "of the file into a bare table"}


def measure(urls: dict[str, str], source: Path, results: dict[str, dict[str, list[dict]]]) -> None:
    """One run of every part on each (empty) database, the databases taking turns."""
    for part in PARTS:
        for name, url in urls.items():
            results[name][part].append(run("import" if part == "reimport" else part, url, source))


def table(results: dict[str, list[dict]]) -> None:
    """The detailed table of one database's runs."""
    print("| part | rows | median s | rows/s | CPU s (median) | rows per CPU s | peak MB (max) "
          "| runs (s) | load avg |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for part, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        rows = runs[0]["rows"]
        cpu = statistics.median(r["cpu"] for r in runs)
        each = ", ".join(f"{r['seconds']:.1f}" for r in runs)
        load = ", ".join(f"{r['load']:.1f}" for r in runs)
        print(f"| {LABELS[part]} | {rows:,} | {seconds:.1f} | {rows / seconds:,.0f} | "
              f"{cpu:.1f} | {rows / cpu:,.0f} | {max(r['peak_mb'] for r in runs):.0f} | "
              f"{each} | {load} |")


def side_by_side(sqlite: dict[str, list[dict]], postgres: dict[str, list[dict]]) -> None:
    """SQLite and PostgreSQL medians in one table, with PostgreSQL's share of SQLite's speed."""
    def speed(runs: list[dict]) -> float:
        return runs[0]["rows"] / statistics.median(r["seconds"] for r in runs)

    print("| part | SQLite rows/s | PostgreSQL rows/s | PG/SQLite |")
    print("|---|---:|---:|---:|")
    for part in PARTS:
        lite, pg = speed(sqlite[part]), speed(postgres[part])
        print(f"| {LABELS[part]} | {lite:,.0f} | {pg:,.0f} | {pg / lite:.2f} |")
    print(f"| {LABELS['copy']} | | {speed(postgres['copy']):,.0f} | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", choices=["import", "export", "recipients", "copy"])
    parser.add_argument("--db", help="(internal) the database URL of one measurement")
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--database-url", help="PostgreSQL to measure beside SQLite (a scratch "
                        "schema is made there and dropped)")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.db, args.csv)
        return
    OUT.mkdir(exist_ok=True)
    source = OUT / f"subscribers-{args.rows}.csv"
    if not source.exists():
        generate(source, args.rows)
    sqlite: dict[str, list[dict]] = {part: [] for part in PARTS}
    postgres: dict[str, list[dict]] = {part: [] for part in (*PARTS, "copy")}
    for number in range(args.runs):
        db = OUT / f"bench-{number}.db"
        for leftover in OUT.glob(f"bench-{number}.db*"):
            leftover.unlink()
        results = {"sqlite": sqlite, "postgres": postgres}
        with ExitStack() as stack:
            urls = {"sqlite": f"sqlite:///{db}"}
            if args.database_url:
                urls["postgres"] = stack.enter_context(
                    postgres_schema(args.database_url, "bench_import"))
            measure(urls, source, results)
            if args.database_url:
                postgres["copy"].append(run("copy", urls["postgres"], source))
        line = {f"{name} {k}": v[-1] for name in urls for k, v in results[name].items()}
        print(f"run {number + 1}: " + json.dumps(line), file=sys.stderr)
    print(f"Machine: {machine()}\n")
    print(f"Command: `.venv/bin/python bench/import.py --rows {args.rows} --runs {args.runs}"
          + (" --database-url postgresql://…" if args.database_url else "") + "`\n")
    if args.database_url:
        side_by_side(sqlite, postgres)
        print("\nPostgreSQL:\n")
        table(postgres)
        print("\nSQLite:\n")
    table(sqlite)
    first = sqlite["import"][0]
    print(f"\nImport outcome: {first['added']:,} added, {first['rejected']:,} rejected "
          "(invalid or duplicate).")
    for leftover in OUT.glob("bench-*.db*"):
        leftover.unlink()


if __name__ == "__main__":
    main()
