"""Benchmark `newsletter send` through the sendgrid transport to a local fake SendGrid.

    .venv/bin/python bench/send.py                 # 100,000 and 1,000,000, 3 runs each
    .venv/bin/python bench/send.py --sizes 100000 --runs 5
    .venv/bin/python bench/send.py --database-url postgresql://user:pw@host/db   # side by side

With ``--database-url``, each size runs on SQLite and on that PostgreSQL database
(the subscribers go into its schema bench_send_N, imported once) in the same
sitting, run by run in turns, and the table gives the PG/SQLite ratios.

For each size: a project in $TMPDIR/newsletter-bench-send/send-N/ (or under
$NEWSLETTER_BENCH_DIR) with N subscribers in SQLite
(imported once with the store's CSV import, then reused), and a fake SendGrid
in its own process that accepts without validating. Each run is a fresh
process that plans and runs the whole send (freeze into batches, build, post,
record) and reports:

- recipients/s over the send (freezing included), and the wall time;
- peak memory (ru_maxrss of the sending process);
- the tool's own time per request apart from the server: building the body (the
  dicts) and the CPU time inside the sendgrid client's call (JSON, HTTP); the helper
  processes do both during the send, so they are timed again here, for 30 requests.

Prints a Markdown table (median of the runs) for docs/performance.md.

The SMTP row (``--smtp``): the same send through the smtp transport to a local
aiosmtpd (tests/plugins/smtp_server.py, STARTTLS and AUTH) in its own process,
which discards the messages; ``--connections`` sets [smtp] connections. Each run is
followed by the floor: bare smtplib sending one pre-built message ``--floor-messages``
times over as many connections to the same server::

    .venv/bin/python bench/send.py --smtp --sizes 100000 --runs 1 --connections 4 8

Several senders sharing one campaign (PostgreSQL only: NEWSLETTER_BENCH_POSTGRES_URL,
else NEWSLETTER_TEST_POSTGRES_URL; the subscribers go into its schema bench_send)::

    .venv/bin/python bench/send.py --sizes 100000 --senders 1 3

runs `newsletter send --yes` in 1, then 3, processes at once for each run and
reports the wall time from their start until the last one exits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import machine  # bench/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parent.parent
# Outside the shared bench/out/, which other benchmarks clean up.
OUT = Path(os.environ.get("NEWSLETTER_BENCH_DIR", tempfile.gettempdir())) / "newsletter-bench-send"
SECRET = "bench-secret-0123456789-abcdef"
KEY = "SG.fake-test-key.not-a-real-secret"


def project_for(size: int, database_url: str | None = None) -> Path:
    """OUT/send-SIZE: the sample newsletter with SIZE subscribers on list 'weekly'
    (in SQLite in its subscribers/, or in ``database_url``)."""
    sys.path.insert(0, str(REPO))
    from newsletter import migrations
    from newsletter.project import Project
    from newsletter.store import count_recipients, get_or_create_list, open_project_database
    from newsletter.store.database import project_database
    from newsletter.store.importer import import_csv

    root = OUT / (f"send-{size}" if database_url is None else f"send-pg-{size}")
    if not (root / "newsletter.toml").exists():
        root.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / "newsletter.toml", root / "newsletter.toml")
        for folder in ("issues", "templates"):
            shutil.copytree(REPO / folder, root / folder, dirs_exist_ok=True)
    # A real send refuses the sample's identity: give the bench newsletter its own.
    config = root / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8")
                      .replace("Example Rights Network, Postfach 1234", "Bench Network, Box 1")
                      .replace('from_email = "brief@example.org"',
                               'from_email = "brief@bench-newsletter.net"'), encoding="utf-8")
    project = Project(root)
    os.environ.pop("NEWSLETTER_DATABASE_URL", None)
    if database_url:
        os.environ["NEWSLETTER_DATABASE_URL"] = database_url
    # A project kept from an earlier version of the code: bring its schema up to date.
    migrations.upgrade(project_database(project).url)
    database = open_project_database(project)
    with database.transaction() as session:
        get_or_create_list(session, "weekly", "Weekly")
    with database.session() as session:
        have = count_recipients(session, "weekly")
    if have != size:
        print(f"importing {size:,} subscribers into {root}/subscribers ...", flush=True)
        csv = root / "subscribers.csv"
        with csv.open("w", encoding="utf-8") as handle:
            handle.write("email,name\n")
            for i in range(have, size):
                handle.write(f"reader{i}@example.org,Reader {i}\n")
        started = time.perf_counter()
        import_csv(database.engine, csv, "weekly")
        csv.unlink()
        print(f"  imported in {time.perf_counter() - started:.0f} s", flush=True)
    database.dispose()
    return root


def reset_campaigns(root: Path) -> None:
    """Forget earlier runs' campaigns so the next run sends everything again."""
    import sqlite3

    with sqlite3.connect(root / "subscribers" / "subscribers.db") as connection:
        connection.execute("DELETE FROM campaign_batch_recipients")
        connection.execute("DELETE FROM campaign_batches")
        connection.execute("DELETE FROM campaigns")
    # Let the WAL shrink so every run starts from the same state.
    with sqlite3.connect(root / "subscribers" / "subscribers.db") as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_fake() -> tuple[subprocess.Popen, str]:
    """The fake SendGrid in its own process (accepting without validating)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.plugins.fake_sendgrid", "--no-validate"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().split()
    return process, f"http://127.0.0.1:{line[1]}"


def _pss_mb(pid: int | str) -> float:
    """Proportional set size: shared pages (forked helpers) counted once in all."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _children() -> list[str]:
    pids: list[str] = []
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            pids += (task / "children").read_text().split()
    return pids


class PeakMemory:
    """Samples the PSS of this process and its helper processes every 200 ms."""

    def __init__(self) -> None:
        import threading

        self.peak = 0.0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(0.2):
            total = _pss_mb("self") + sum(_pss_mb(pid) for pid in _children())
            self.peak = max(self.peak, total)

    def stop(self) -> float:
        self.done.set()
        self.thread.join()
        return self.peak


def one_run(root: Path) -> dict[str, float]:
    """Plan and run one send in this process; return its figures."""
    sys.path.insert(0, str(REPO))
    from newsletter.delivery import requests as request_module
    from newsletter.delivery.planning import SendOptions, plan_send
    from newsletter.delivery.send import run_send
    from newsletter.delivery.transports import SendGridTransport
    from newsletter.project import Project

    build_times: list[float] = []
    post_cpu: list[float] = []
    post_wall: list[float] = []

    project = Project(root)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    memory = PeakMemory()
    started = time.perf_counter()
    plan = plan_send(project, SendOptions(root / "issues" / "2021-02-01.yaml",
                                          list_slug="weekly", transport="sendgrid"))
    planned = time.perf_counter()
    transport = SendGridTransport(os.environ["SENDGRID_API_KEY"],
                                  timeout=project.config.delivery.timeout)
    report = run_send(plan, transport=transport)
    finished = time.perf_counter()
    peak_pss = memory.stop()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    helpers = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert report.complete, report
    # The bodies were built and posted in helper processes; time doing it for some here.
    from newsletter.delivery.batchrecipients import RecipientReader
    from newsletter.store import get_list

    with plan.database.session() as session:
        list_id = get_list(session, "weekly").id
    reader = RecipientReader(plan.database.engine, list_id, report.campaign_id)
    builder = request_module.RequestBuilder(
        project.config, plan.rendered, issue_name=plan.issue.name, list_slug="weekly",
        secret=plan.secret, campaign_id=report.campaign_id)
    for number in range(1, min(report.requests, 30) + 1):
        recipients = reader.read(number).people
        built = time.perf_counter()
        body = builder.body(recipients, number)
        build_times.append(time.perf_counter() - built)
        cpu, wall = time.thread_time(), time.perf_counter()
        transport.send(body)
        post_cpu.append(time.thread_time() - cpu)
        post_wall.append(time.perf_counter() - wall)
    return {
        "recipients": report.recipients_accepted,
        "requests": report.requests,
        "plan_s": planned - started,
        "send_s": finished - planned,
        "rate": report.recipients_accepted / (finished - planned),
        "build_ms": statistics.median(build_times) * 1000,
        "post_cpu_ms": statistics.median(post_cpu) * 1000,
        "post_wall_ms": statistics.median(post_wall) * 1000,
        "cpu_s": usage.ru_utime + usage.ru_stime - cpu_before,
        "helper_cpu_s": helpers.ru_utime + helpers.ru_stime,
        "peak_mb": usage.ru_maxrss / 1024,
        "helper_peak_mb": helpers.ru_maxrss / 1024,
        "peak_pss_mb": peak_pss,
    }


def smtp_run(root: Path) -> dict[str, float]:
    """Plan and run one send through the smtp transport in this process; its figures."""
    sys.path.insert(0, str(REPO))
    from newsletter.delivery.planning import SendOptions, plan_send
    from newsletter.delivery.send import run_send
    from newsletter.project import Project

    project = Project(root)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    plan = plan_send(project, SendOptions(root / "issues" / "2021-02-01.yaml",
                                          list_slug="weekly", transport="smtp"))
    planned = time.perf_counter()
    report = run_send(plan)
    finished = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    assert report.complete and report.recipients_accepted == plan.recipient_count, report
    return {"recipients": report.recipients_accepted, "send_s": finished - planned,
            "rate": report.recipients_accepted / (finished - planned),
            "cpu_s": usage.ru_utime + usage.ru_stime - cpu_before,
            "peak_mb": usage.ru_maxrss / 1024}


def smtp_floor(root: Path, port: int, cert: str, messages: int, connections: int,
               ) -> dict[str, float]:
    """The floor: smtplib's sendmail in ``connections`` threads (STARTTLS, AUTH,
    TCP_NODELAY, 1,000 messages per connection), one pre-built message of the issue
    sent ``messages`` times to the same server. Nothing is built or recorded."""
    import datetime as dt
    import smtplib
    import socket
    import ssl
    import threading

    sys.path.insert(0, str(REPO))
    from newsletter.delivery.personal import personal_message_bytes
    from newsletter.delivery.requests import RequestBuilder
    from newsletter.issue import load_issue
    from newsletter.project import Project
    from newsletter.render import render_email

    project = Project(root)
    issue = load_issue(project.issues_dir / "2021-02-01.yaml", project.issue_files())
    builder = RequestBuilder(project.config, render_email(project, issue, for_sending=True),
                             issue_name=issue.name, list_slug="weekly", secret=SECRET.encode())
    body = builder.body([(1, "reader1@example.org", "Reader 1")])
    [(_email, data)] = personal_message_bytes(project.config, body, "floor",
                                              dt.datetime.now(dt.UTC))
    context = ssl.create_default_context(cafile=cert)

    def session() -> smtplib.SMTP:
        smtp = smtplib.SMTP("127.0.0.1", port)
        smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        smtp.starttls(context=context)
        smtp.login("news@example.org", os.environ["NEWSLETTER_SMTP_PASSWORD"])
        return smtp

    def work(count: int) -> None:
        smtp = session()
        for i in range(count):
            if i and i % 1000 == 0:
                smtp.quit()
                smtp = session()
            smtp.sendmail("news@bench.example", [f"reader{i}@example.org"], data)
        smtp.quit()

    threads = [threading.Thread(target=work, args=(messages // connections,))
               for _ in range(connections)]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    sent = messages // connections * connections
    return {"send_s": elapsed, "rate": sent / elapsed, "messages": sent,
            "cpu_s": usage.ru_utime + usage.ru_stime - cpu_before, "bytes": len(data)}


def own_identity(toml: str) -> str:
    """newsletter.toml with an identity of its own (real transports refuse the sample's)."""
    return (toml.replace("Example Rights Network, Postfach", "Bench Rights Network, Postfach")
            .replace('from_email = "brief@example.org"', 'from_email = "news@bench.example"'))


def reset_smtp(root: Path) -> None:
    """reset_campaigns, and the per-message records (a new batch may reuse an old id)."""
    import sqlite3

    with sqlite3.connect(root / "subscribers" / "subscribers.db") as connection:
        connection.execute("DELETE FROM batch_deliveries")
    reset_campaigns(root)


def _smtp_subprocess(args: list[str], env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, *args], env=env, cwd=REPO,
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main_smtp(sizes: list[int], runs: int, connections: list[int], floor_messages: int,
              ) -> None:
    """The SMTP row: sends to a local aiosmtpd that discards the messages, and the floor
    (bare smtplib, a pre-built message) to the same server in the same run."""
    server = subprocess.Popen([sys.executable, "-m", "tests.plugins.smtp_server", "--discard"],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    _word, port, cert = server.stdout.readline().split()
    env = dict(os.environ, NEWSLETTER_SECRET=SECRET,
               NEWSLETTER_SMTP_PASSWORD="smtp-test-password-not-real")
    env.pop("NEWSLETTER_DATABASE_URL", None)
    rows = []
    try:
        for size in sizes:
            root = project_for(size)
            config = root / "newsletter.toml"
            base = own_identity(config.read_text(encoding="utf-8").split("\n[smtp]\n")[0])
            for count in connections:
                config.write_text(
                    base + f'\n[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = '
                    f'"starttls"\nusername = "news@example.org"\nca_file = "{cert}"\n'
                    f"connections = {count}\nmessages_per_connection = 1000\n",
                    encoding="utf-8")
                results, floors = [], []
                for run in range(runs):
                    reset_smtp(root)
                    server_before = process_cpu(server.pid)
                    figures = _smtp_subprocess(["--smtp-run", str(root)], env)
                    figures["server_cpu_s"] = process_cpu(server.pid) - server_before
                    figures["load"] = os.getloadavg()[0]
                    results.append(figures)
                    print(f"{size:>9,} x{count} run {run + 1}: {figures['send_s']:.1f} s, "
                          f"{figures['rate']:,.0f}/s, CPU {figures['cpu_s']:.1f} s, server "
                          f"CPU {figures['server_cpu_s']:.1f} s, peak "
                          f"{figures['peak_mb']:.0f} MB, load {figures['load']:.1f}",
                          flush=True)
                    server_before = process_cpu(server.pid)
                    floor = _smtp_subprocess(["--smtp-floor", str(root), port, cert,
                                              str(min(size, floor_messages)), str(count)], env)
                    floor["server_cpu_s"] = process_cpu(server.pid) - server_before
                    floors.append(floor)
                    print(f"{'floor':>9} x{count} run {run + 1}: {floor['messages']:,.0f} "
                          f"messages of {floor['bytes']:,.0f} bytes in {floor['send_s']:.1f} s, "
                          f"{floor['rate']:,.0f}/s, CPU {floor['cpu_s']:.1f} s, server CPU "
                          f"{floor['server_cpu_s']:.1f} s", flush=True)
                rows.append((size, count, *({k: statistics.median(r[k] for r in found)
                                              for k in found[0]}
                                             for found in (results, floors))))
            config.write_text(base, encoding="utf-8")
    finally:
        server.terminate()
        server.wait()
    print()
    print(f"Machine: {machine()}; median of {runs} runs")
    print()
    print("| messages | connections | send (s) | messages/s | sender CPU (s) | server CPU (s) "
          "| peak RSS | load | floor messages/s (server CPU per message) | send / floor |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size, count, m, f in rows:
        print(f"| {size:,} | {count} | {m['send_s']:.1f} | {m['rate']:,.0f} | "
              f"{m['cpu_s']:.1f} | {m['server_cpu_s']:.1f} | {m['peak_mb']:.0f} MB | "
              f"{m['load']:.1f} | {f['rate']:,.0f} "
              f"({f['server_cpu_s'] / f['messages'] * 1000:.2f} ms) | "
              f"{m['rate'] / f['rate']:.2f} |")


def postgres_url(base: str | None = None, schema: str = "bench_send") -> str:
    """The benchmark's PostgreSQL URL (``base``, else NEWSLETTER_BENCH_POSTGRES_URL, else
    NEWSLETTER_TEST_POSTGRES_URL) with search_path set to ``schema``, created if missing."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = base or os.environ.get("NEWSLETTER_BENCH_POSTGRES_URL") or os.environ.get(
        "NEWSLETTER_TEST_POSTGRES_URL", "")
    if not base:
        raise SystemExit("--senders needs NEWSLETTER_BENCH_POSTGRES_URL (or "
                         "NEWSLETTER_TEST_POSTGRES_URL)")
    sys.path.insert(0, str(REPO))
    from newsletter.dbengine import normalise_url

    base = normalise_url(base)
    engine = create_engine(base)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
    engine.dispose()
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def reset_postgres(url: str) -> None:
    """Forget earlier runs' campaigns (PostgreSQL)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as connection:
        for table in ("campaign_batch_recipients", "campaign_batches", "campaigns"):
            connection.execute(text(f"DELETE FROM {table}"))
    engine.dispose()


def senders_run(root: Path, senders: int, env: dict[str, str], url: str) -> float:
    """Wall seconds for ``senders`` `newsletter send` processes to finish one campaign."""
    from sqlalchemy import create_engine, text

    command = [sys.executable, "-c", "from newsletter.cli import main; main()", "send",
               "issues/2021-02-01.yaml", "--list", "weekly", "--transport", "sendgrid",
               "--yes"]
    started = time.perf_counter()
    processes = [subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for _ in range(senders)]
    errors = [p.communicate()[1] for p in processes]
    elapsed = time.perf_counter() - started
    engine = create_engine(url)
    with engine.connect() as connection:
        status = connection.execute(text("SELECT status FROM campaigns")).scalar_one()
    engine.dispose()
    if status != "sent":
        raise SystemExit("the campaign was not sent:\n" + "\n".join(errors))
    return elapsed


def main_senders(sizes: list[int], senders: list[int], runs: int) -> None:
    """The --senders benchmark (see the module docstring)."""
    url = postgres_url()
    os.environ["NEWSLETTER_DATABASE_URL"] = url
    fake, fake_url = start_fake()
    env = dict(os.environ, SENDGRID_API_HOST=fake_url, SENDGRID_API_KEY=KEY,
               NEWSLETTER_SECRET=SECRET, NEWSLETTER_DATABASE_URL=url)
    rows = []
    try:
        for size in sizes:
            root = project_for(size, url)
            times: dict[int, float] = {}
            for count in senders:
                results = []
                for run in range(runs):
                    reset_postgres(url)
                    results.append(senders_run(root, count, env, url))
                    print(f"{size:>9,} with {count} sender(s), run {run + 1}: "
                          f"{results[-1]:.2f} s (load {os.getloadavg()[0]:.1f})", flush=True)
                times[count] = statistics.median(results)
            rows.append((size, times))
    finally:
        fake.terminate()
        fake.wait()
    print()
    print(f"Machine: {machine()}; PostgreSQL; median of {runs} runs")
    print()
    print("| recipients | senders | wall time (s) | recipients/s | vs 1 sender |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for size, times in rows:
        base = times.get(1)
        for count, seconds in times.items():
            ratio = f"{base / seconds:.2f}×" if base else "–"
            print(f"| {size:,} | {count} | {seconds:.2f} | {size / seconds:,.0f} | {ratio} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--one-run", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--senders", type=int, nargs="+",
                        help="sender processes sharing one campaign, on PostgreSQL, e.g. 1 3")
    parser.add_argument("--smtp", action="store_true", help="the SMTP row (local aiosmtpd)")
    parser.add_argument("--connections", type=int, nargs="+", default=[4])
    parser.add_argument("--floor-messages", type=int, default=20_000,
                        help="messages the SMTP floor sends (at most the size)")
    parser.add_argument("--smtp-run", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help="also run on this PostgreSQL database, side by "
                        "side with SQLite (schema bench_send_N per size)")
    parser.add_argument("--smtp-floor", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smtp_run:
        print(json.dumps(smtp_run(args.smtp_run)))
        return
    if args.smtp_floor:
        root, port, cert, messages, connections = args.smtp_floor
        print(json.dumps(smtp_floor(Path(root), int(port), cert, int(messages),
                                    int(connections))))
        return
    if args.smtp:
        main_smtp(args.sizes, args.runs, args.connections, args.floor_messages)
        return
    if args.senders:
        main_senders(args.sizes, args.senders, args.runs)
        return
    if args.one_run:
        print(json.dumps(one_run(args.one_run)))
        return
    if args.database_url:
        main_compare(args.sizes, args.runs, args.database_url)
        return
    fake, url = start_fake()
    env = dict(os.environ, SENDGRID_API_HOST=url, SENDGRID_API_KEY=KEY,
               NEWSLETTER_SECRET=SECRET)
    env.pop("NEWSLETTER_DATABASE_URL", None)
    rows = []
    try:
        for size in args.sizes:
            root = project_for(size)
            results = []
            for run in range(args.runs):
                reset_campaigns(root)
                results.append(measured_run(root, env, fake, f"{size:>9,} run {run + 1}"))
            rows.append((size, {k: statistics.median(r[k] for r in results)
                                for k in results[0]}))
    finally:
        fake.terminate()
        fake.wait()
    print()
    print(f"Machine: {machine()}; median of {args.runs} runs")
    print()
    print("| recipients | send (s) | recipients/s | CPU main + helpers (s) | fake server CPU (s) "
          "| peak memory, all "
          "processes (PSS) | peak RSS main / helper | build / request | post CPU / request "
          "| post wall / request | plan (s) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size, m in rows:
        print(f"| {size:,} | {m['send_s']:.2f} | {m['rate']:,.0f} | {m['cpu_s']:.1f} + "
              f"{m['helper_cpu_s']:.1f} | {m['server_cpu_s']:.1f} | {m['peak_pss_mb']:.0f} MB | "
              f"{m['peak_mb']:.0f} / "
              f"{m['helper_peak_mb']:.0f} MB | "
              f"{m['build_ms']:.1f} ms | {m['post_cpu_ms']:.1f} ms | {m['post_wall_ms']:.1f} ms "
              f"| {m['plan_s']:.2f} |")


def measured_run(root: Path, env: dict[str, str], fake: subprocess.Popen,
                 label: str) -> dict[str, float]:
    """One send in a fresh process (see one_run); prints a line and returns its figures."""
    server_before = process_cpu(fake.pid)
    out = subprocess.run(
        [sys.executable, __file__, "--one-run", str(root)], env=env, cwd=REPO,
        capture_output=True, text=True, check=False,
    )
    if out.returncode:
        raise SystemExit(out.stderr)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    figures["server_cpu_s"] = process_cpu(fake.pid) - server_before
    figures["load"] = os.getloadavg()[0]
    print(f"{label}: {figures['send_s']:.2f} s "
          f"(CPU {figures['cpu_s']:.2f} s + helpers {figures['helper_cpu_s']:.2f} s, "
          f"fake server {figures['server_cpu_s']:.2f} s, "
          f"load {figures['load']:.1f}), {figures['rate']:,.0f}/s, peak "
          f"{figures['peak_mb']:.0f} MB (helper {figures['helper_peak_mb']:.0f} MB, "
          f"all together {figures['peak_pss_mb']:.0f} MB PSS), build "
          f"{figures['build_ms']:.1f} ms + post CPU {figures['post_cpu_ms']:.1f} ms "
          f"(wall {figures['post_wall_ms']:.1f} ms)/request", flush=True)
    return figures


def main_compare(sizes: list[int], runs: int, database_url: str) -> None:
    """SQLite and PostgreSQL in one sitting, run by run in turns; a side-by-side table."""
    fake, fake_url = start_fake()
    env = dict(os.environ, SENDGRID_API_HOST=fake_url, SENDGRID_API_KEY=KEY,
               NEWSLETTER_SECRET=SECRET)
    env.pop("NEWSLETTER_DATABASE_URL", None)
    rows = []
    try:
        for size in sizes:
            url = postgres_url(database_url, f"bench_send_{size}")
            roots = {"SQLite": project_for(size), "PostgreSQL": project_for(size, url)}
            os.environ.pop("NEWSLETTER_DATABASE_URL", None)
            results: dict[str, list[dict[str, float]]] = {"SQLite": [], "PostgreSQL": []}
            for run in range(runs):
                for name, root in roots.items():
                    run_env = dict(env)
                    if name == "PostgreSQL":
                        reset_postgres(url)
                        run_env["NEWSLETTER_DATABASE_URL"] = url
                    else:
                        reset_campaigns(root)
                    results[name].append(measured_run(root, run_env, fake,
                                                      f"{size:>9,} {name} run {run + 1}"))
            rows.append((size, {name: {k: statistics.median(r[k] for r in got)
                                       for k in got[0]} for name, got in results.items()}))
    finally:
        fake.terminate()
        fake.wait()
    print()
    print(f"Machine: {machine()}; median of {runs} runs, SQLite and PostgreSQL in turns")
    print()
    print("| recipients | SQLite send (s) | SQLite recipients/s | PostgreSQL send (s) "
          "| PostgreSQL recipients/s | PG/SQLite | plan SQLite / PG (s) | load |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size, m in rows:
        lite, pg = m["SQLite"], m["PostgreSQL"]
        print(f"| {size:,} | {lite['send_s']:.2f} | {lite['rate']:,.0f} | {pg['send_s']:.2f} "
              f"| {pg['rate']:,.0f} | {pg['rate'] / lite['rate']:.2f} | "
              f"{lite['plan_s']:.2f} / {pg['plan_s']:.2f} | "
              f"{(lite['load'] + pg['load']) / 2:.1f} |")

if __name__ == "__main__":
    main()
