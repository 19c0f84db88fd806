"""Benchmark: SendGrid's event webhook ingesting 100,000 events in batches of 1,000.

    .venv/bin/python bench/webhook.py                    # 100,000 events, 3 runs
    .venv/bin/python bench/webhook.py --events 20000 --runs 1 --concurrency 2
    .venv/bin/python bench/webhook.py --database-url postgresql://user:pw@host/db

With ``--database-url`` each run measures SQLite and then PostgreSQL (in a scratch
schema, dropped afterwards) with the same events, and a side-by-side table follows.

Each run makes a fresh project (in a temporary folder) with 10,000 subscribers,
starts the real `newsletter serve` (uvicorn) in its own process, and posts signed
batches over loopback with httpx from this process: every batch is verified
(ECDSA P-256), deduped and applied in one transaction, as in production. The mix
is like a real send: mostly processed/delivered/open/click, with Apple Mail machine
opens, and a few bounces, blocks, drops, spam reports and unsubscribes that change
subscribers. Batches are built and signed before the clock starts. A second pass
re-posts every batch (SendGrid's retries), which must change nothing.
Prints a Markdown summary for docs/performance.md ("## Web service").
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from _machine import machine, postgres_schema  # bench/ is on sys.path as a script
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SUBSCRIBERS = 10_000
MIX = [("processed", 30), ("delivered", 30), ("open", 18), ("machine_open", 10), ("click", 8),
       ("deferred", 2), ("blocked", 0.5), ("bounce", 0.5), ("dropped", 0.4),
       ("spamreport", 0.05), ("unsubscribe", 0.1), ("group_unsubscribe", 0.05)]
# Clicked links: a few stories, some with tracking parameters (one row per link and reader).
STORIES = [f"https://news.example.org/story/{n}" for n in range(1, 7)] + [
    "https://news.example.org/story/1?utm_source=newsletter&utm_medium=email"]


def make_project(root: Path) -> Path:
    """A fresh project with a list of SUBSCRIBERS members (NEWSLETTER_DATABASE_URL or SQLite)."""
    from newsletter.project import init_project
    from newsletter.store import create_list, open_project_database
    from newsletter.store.models import Membership, Subscriber, utcnow

    if root.exists():
        shutil.rmtree(root)
    project = init_project(root, "Bench")
    db = open_project_database(project)
    with db.transaction() as session:
        weekly = create_list(session, "weekly", "Weekly")
        now = utcnow()
        people = [Subscriber(email=f"p{i}@example.org", email_key=f"p{i}@example.org",
                             name="", attributes={}, status="active", status_changed_at=now,
                             created_at=now) for i in range(SUBSCRIBERS)]
        session.add_all(people)
        session.flush()
        session.add_all(Membership(subscriber_id=p.id, list_id=weekly.id, status="subscribed",
                                   changed_at=now, how="import", created_at=now) for p in people)
    db.dispose()
    return root


def make_events(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    kinds, weights = zip(*MIX, strict=True)
    now = int(time.time())
    events = []
    for kind in rng.choices(kinds, weights, k=count):
        event = {"email": f"p{rng.randrange(SUBSCRIBERS)}@example.org", "timestamp": now,
                 "sg_event_id": uuid.UUID(int=rng.getrandbits(128)).hex,
                 "sg_message_id": f"{uuid.UUID(int=rng.getrandbits(128)).hex}.filter0001",
                 "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>", "category": ["weekly"],
                 "nl_campaign": "1", "nl_list": "weekly", "nl_issue": "2026-11-30",
                 "nl_batch": "1", "event": kind}
        if kind == "machine_open":
            event.update(event="open", sg_machine_open=True, useragent="Mozilla/5.0")
        elif kind == "open":
            event.update(sg_machine_open=False, useragent="Mozilla/5.0", ip="192.0.2.1")
        elif kind == "click":
            event.update(url=rng.choice(STORIES), ip="192.0.2.1")
        elif kind in ("bounce", "blocked"):
            event.update(event="bounce", type=kind, status="5.1.1",
                         reason="550 5.1.1 The email account does not exist")
        elif kind == "dropped":
            event.update(reason=rng.choice(["Bounced Address", "Unsubscribed Address",
                                            "Spam Reporting Address", "Invalid"]))
        elif kind == "group_unsubscribe":
            event.update(asm_group_id=42)
        events.append(event)
    return events


def signed_batches(events: list[dict], size: int, key: ec.EllipticCurvePrivateKey
                   ) -> list[tuple[bytes, dict[str, str]]]:
    batches = []
    stamp = str(int(time.time()))
    for start in range(0, len(events), size):
        body = json.dumps(events[start:start + size]).encode()
        signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        batches.append((body, {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
            "Content-Type": "application/json"}))
    return batches


def start_server(root: Path, port: int, public_key: str, workers: int = 1) -> subprocess.Popen:
    env = {**os.environ, "NEWSLETTER_SECRET": "bench-secret-0123456789abcdef",
           "SENDGRID_WEBHOOK_PUBLIC_KEY": public_key}
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "-C", str(root), "serve", "--port", str(port),
         "--workers", str(workers)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("newsletter serve did not start")
        time.sleep(0.1)


def post_all(url: str, batches: list, concurrency: int) -> tuple[float, dict[str, int]]:
    totals: dict[str, int] = {}
    lock = threading.Lock()
    local = threading.local()

    def post(batch: tuple[bytes, dict[str, str]]) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=120)
        answer = client.post(url, content=batch[0], headers=batch[1])
        answer.raise_for_status()
        with lock:
            for key, value in answer.json().items():
                totals[key] = totals.get(key, 0) + value

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(post, batches))
    return time.perf_counter() - started, totals


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live children so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = children.read_text().split() if children.exists() else []
    return own + sum(cpu_seconds(int(kid)) for kid in kids)


def one_run(run: int, args: argparse.Namespace, folder: Path, database_url: str | None) -> dict:
    """One measurement on a fresh project: SQLite, or ``database_url`` if given."""
    if database_url:
        os.environ["NEWSLETTER_DATABASE_URL"] = database_url
    else:
        os.environ.pop("NEWSLETTER_DATABASE_URL", None)
    label = "PostgreSQL" if database_url else "SQLite"
    root = make_project(folder / f"run{run}")
    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    port = free_port()
    process = start_server(root, port, public, args.workers)
    try:
        batches = signed_batches(make_events(args.events, run), args.batch, key)
        url = f"http://127.0.0.1:{port}/webhooks/sendgrid"
        cpu_before = cpu_seconds(process.pid)
        elapsed, totals = post_all(url, batches, args.concurrency)
        cpu = cpu_seconds(process.pid) - cpu_before
        retry_elapsed, retry = post_all(url, batches, args.concurrency)
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
    assert totals["new"] == args.events, totals
    assert retry["new"] == 0 and retry["changes"] == 0 and retry["duplicates"] == args.events
    result = {"elapsed": elapsed, "rate": args.events / elapsed, "changes": totals["changes"],
              "retry_rate": args.events / retry_elapsed, "cpu_rate": args.events / cpu,
              "load": os.getloadavg()[0]}
    print(f"run {run} ({label}): {args.events:,} events in {elapsed:.2f} s = "
          f"{result['rate']:,.0f} events/s ({totals['changes']} status changes; server CPU "
          f"{cpu:.2f} s = {result['cpu_rate']:,.0f} events per CPU-second); retried batches "
          f"{result['retry_rate']:,.0f} events/s, changed nothing; load "
          f"{result['load']:.1f}", flush=True)
    return result


def summary(label: str, args: argparse.Namespace, results: list[dict]) -> None:
    rate = statistics.median(r["rate"] for r in results)
    cpu_rate = statistics.median(r["cpu_rate"] for r in results)
    retry = statistics.median(r["retry_rate"] for r in results)
    runs = ", ".join(f"{r['rate']:,.0f}" for r in results)
    print(f"- {label}: {args.events:,} events in batches of {args.batch:,}: median "
          f"{rate:,.0f} events/s (runs: {runs}); the server used one CPU-second per "
          f"{cpu_rate:,.0f} events; SendGrid's retries of the same batches: {retry:,.0f} "
          "events/s, nothing changed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=1,
                        help="batches in flight at once (SendGrid posts several)")
    parser.add_argument("--workers", type=int, default=1, help="newsletter serve --workers N")
    parser.add_argument("--database-url", help="PostgreSQL to measure beside SQLite (a scratch "
                        "schema is made there and dropped)")
    args = parser.parse_args()
    sqlite: list[dict] = []
    postgres: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-webhook-") as folder:
        for run in range(1, args.runs + 1):
            sqlite.append(one_run(run, args, Path(folder), None))
            if args.database_url:
                with postgres_schema(args.database_url, "bench_webhook") as url:
                    postgres.append(one_run(run, args, Path(folder), url))
    print()
    print(f"- Machine: {machine()}, SQLite (WAL), uvicorn {_version('uvicorn')} "
          f"(h11), Starlette {_version('starlette')}")
    print(f"- Command: `.venv/bin/python bench/webhook.py --events {args.events} --batch "
          f"{args.batch} --runs {args.runs} --concurrency {args.concurrency}"
          + (" --database-url postgresql://…" if args.database_url else "") + "`")
    summary("SQLite", args, sqlite)
    if postgres:
        summary("PostgreSQL", args, postgres)
        lite = statistics.median(r["rate"] for r in sqlite)
        pg = statistics.median(r["rate"] for r in postgres)
        print("\n| workload | SQLite events/s | PostgreSQL events/s | PG/SQLite |")
        print("|---|---:|---:|---:|")
        print(f"| webhook, {args.events:,} signed events | {lite:,.0f} | {pg:,.0f} | "
              f"{pg / lite:.2f} |")
        retry_lite = statistics.median(r["retry_rate"] for r in sqlite)
        retry_pg = statistics.median(r["retry_rate"] for r in postgres)
        print(f"| the same batches again (retries) | {retry_lite:,.0f} | {retry_pg:,.0f} | "
              f"{retry_pg / retry_lite:.2f} |")
    loads = ", ".join(f"{r['load']:.1f}" for r in sqlite + postgres)
    print(f"- Load average after each run: {loads}")


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    main()
