"""A fake SendGrid v3 API: a real threaded HTTP server on 127.0.0.1, started by the tests.

It checks every request against SendGrid's OpenAPI description (tsg_mail_v3.json,
tsg_scheduled_sends_v3.json; for the suppression GETs, tsg_suppressions_v3.json: path,
query and header parameters; for GET /v3/categories/stats, the bundled excerpt
tsg_categories_stats_v3.json) with jsonschema, and against the limits the
description does not express (../shared/sendgrid/README.md), checks the
Authorization header, records what it accepted, and can be told to misbehave:

    fake.script(Reply(429, reset_in=0.2), Reply(500), HANG, DROP)  # the next requests
    fake.suppressions["bounces"] = [{"email": ..., "created": 100}]  # what GETs return
    fake.category_stats["issue:2026-11-30"] = {"2026-11-30": {"delivered": 9}}
    fake.delay = 0.05                                              # every request

The spec files come from ../shared/sendgrid when present, else from the copies
in tests/data/sendgrid (so a fresh clone still works); see sendgrid_spec.py.

Run standalone (for bench/send.py), accepting without validating::

    python -m tests.plugins.fake_sendgrid --no-validate   # prints "PORT <n>"
"""

from __future__ import annotations

import collections
import json
import secrets
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.sendgrid_spec import MAX_BODY, limit_errors, parameter_errors, validators

API_KEY = "SG.fake-test-key.not-a-real-secret"
CATEGORY_METRICS = (
    "blocks", "bounce_drops", "bounces", "clicks", "deferred", "delivered", "invalid_emails",
    "opens", "processed", "requests", "spam_report_drops", "spam_reports", "unique_clicks",
    "unique_opens", "unsubscribe_drops", "unsubscribes",
)


# --- scripted behaviour ------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """Answer with ``status`` (and SendGrid-style errors / rate-limit headers)."""

    status: int
    errors: tuple[tuple[str | None, str], ...] = ()  # (field, message)
    reset_in: float | None = None  # 429: X-RateLimit-Reset this many seconds ahead


HANG = "hang"  # accept (and record), but answer only after ``hang_seconds``
DROP = "drop"  # read the request, record nothing, close the connection without answering


@dataclass
class Accepted:
    """One Mail Send request the fake accepted."""

    body: dict[str, Any]
    at: float
    sandbox: bool

    @property
    def emails(self) -> list[str]:
        return [t["email"] for p in self.body["personalizations"] for t in p["to"]]

    @property
    def batch(self) -> str:
        return str((self.body.get("custom_args") or {}).get("nl_batch", ""))


@dataclass
class FakeSendGrid:
    """State and controls of one fake server (see the module docstring)."""

    api_key: str = API_KEY
    validate: bool = True
    delay: float = 0.0
    # When set to an Event, Mail Send requests wait (at most a minute) until it is set:
    # a test holds requests in flight for exactly as long as it needs.
    gate: threading.Event | None = None
    gate_free: int = 0  # how many Mail Send requests pass before the gate applies
    hang_seconds: float = 5.0
    url: str = ""
    accepted: list[Accepted] = field(default_factory=list)
    rejected: list[tuple[int, list[dict]]] = field(default_factory=list)
    log: list[tuple[str, str, int]] = field(default_factory=list)
    batch_ids: set[str] = field(default_factory=set)
    scheduled: dict[str, str] = field(default_factory=dict)
    suppressions: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {
        "bounces": [], "spam_reports": [], "unsubscribes": []})
    groups: dict[int, list[str]] = field(default_factory=dict)
    # GET /v3/categories/stats: category → {"YYYY-MM-DD": {metric: n}} (missing metrics are 0)
    category_stats: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    gets: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (list, query)
    requests_seen: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    recipients_seen: int = 0
    bytes_seen: int = 0
    _plan: collections.deque = field(default_factory=collections.deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    closing: threading.Event = field(default_factory=threading.Event)

    def script(self, *behaviours: Reply | str) -> None:
        """The next Mail Send and suppression requests get these answers, in order (then
        normal service). HANG and DROP apply to Mail Send only."""
        with self.lock:
            self._plan.extend(behaviours)

    def next_behaviour(self) -> Reply | str | None:
        with self.lock:
            return self._plan.popleft() if self._plan else None

    def delivered(self) -> collections.Counter[str]:
        """How many times each address was accepted (sandbox requests excluded)."""
        counts: collections.Counter[str] = collections.Counter()
        for item in self.accepted:
            if not item.sandbox:
                counts.update(item.emails)
        return counts

    def reset(self) -> None:
        """Forget everything recorded and scripted."""
        with self.lock:
            self.accepted.clear()
            self.rejected.clear()
            self.log.clear()
            self.gets.clear()
            self._plan.clear()
            self.requests_seen = self.recipients_seen = self.bytes_seen = 0


def _errors_json(errors: list[dict]) -> bytes:
    return json.dumps({"errors": errors}).encode()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
              ) -> None:
        fake = self.server.fake
        with fake.lock:
            fake.log.append((self.command, self.path, status))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(body)
        self.close_connection = True

    def _read(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:  # noqa: N802
        fake = self.server.fake
        if not self._authorised():
            return
        if self.path.startswith("/v3/mail/batch/"):
            batch_id = self.path.rsplit("/", 1)[1]
            if batch_id in fake.batch_ids:
                self._send(200, json.dumps({"batch_id": batch_id}).encode())
            else:
                self._send(400, _errors_json([{"field": None, "message": "invalid batch id"}]))
            return
        if self.path == "/v3/user/scheduled_sends":
            items = [{"batch_id": b, "status": s} for b, s in fake.scheduled.items()]
            self._send(200, json.dumps(items).encode())
            return
        path, _, query_text = self.path.partition("?")
        parts = path.split("/")
        if path.startswith("/v3/suppression/") and parts[3] in fake.suppressions:
            self._suppression_list(parts[3], urllib.parse.parse_qs(query_text))
        elif path == "/v3/categories/stats":
            self._category_stats(urllib.parse.parse_qs(query_text))
        elif len(parts) == 6 and parts[1:4] == ["v3", "asm", "groups"] \
                and parts[5] == "suppressions":
            self._group(parts[4], urllib.parse.parse_qs(query_text))
        else:
            self._send(404, _errors_json([{"field": None, "message": "not found"}]))

    def _get_refused(self, template: str, path_values: dict[str, str],
                     query: dict[str, list[str]]) -> bool:
        """Answer 400 (or a scripted reply) and say True, unless the GET is to be served."""
        fake = self.server.fake
        problems = (parameter_errors(template, path_values, query, self.headers)
                    if fake.validate else [])
        if problems:
            with fake.lock:
                fake.rejected.append((400, problems))
            self._send(400, _errors_json(problems))
            return True
        behaviour = fake.next_behaviour()
        if isinstance(behaviour, Reply):
            self._reply(behaviour)
            return True
        return False

    def _suppression_list(self, kind: str, query: dict[str, list[str]]) -> None:
        fake = self.server.fake
        with fake.lock:
            fake.gets.append((kind, {k: v[-1] for k, v in query.items()}))
        if self._get_refused(f"/v3/suppression/{kind}", {}, query):
            return

        def number(name: str, default: int) -> int:
            return int(query[name][-1]) if name in query else default

        start, end = number("start_time", 0), number("end_time", 2**40)
        offset, limit = number("offset", 0), number("limit", 500)
        rows = [r for r in fake.suppressions[kind] if start <= r["created"] <= end]
        self._send(200, json.dumps(rows[offset:offset + limit]).encode())

    def _group(self, group_id: str, query: dict[str, list[str]]) -> None:
        fake = self.server.fake
        with fake.lock:
            fake.gets.append(("group", {"group_id": group_id}))
        if self._get_refused("/v3/asm/groups/{group_id}/suppressions",
                             {"group_id": group_id}, query):
            return
        if not group_id.isdigit() or int(group_id) not in fake.groups:
            self._send(404, _errors_json([{"field": None, "message": "group not found"}]))
            return
        self._send(200, json.dumps(fake.groups[int(group_id)]).encode())

    def _category_stats(self, query: dict[str, list[str]]) -> None:
        """Daily statistics of the asked categories between start_date and end_date."""
        fake = self.server.fake
        with fake.lock:
            fake.gets.append(("categories/stats", {k: ",".join(v) for k, v in query.items()}))
        if self._get_refused("/v3/categories/stats", {}, query):
            return
        names = query["categories"]
        start, end = query["start_date"][-1], query.get("end_date", ["9999-12-31"])[-1]
        days = sorted({day for name in names for day in fake.category_stats.get(name, {})
                       if start <= day <= end})
        body = [{"date": day, "stats": [
            {"type": "category", "name": name,
             "metrics": {**dict.fromkeys(CATEGORY_METRICS, 0),
                         **fake.category_stats.get(name, {}).get(day, {})}}
            for name in names]} for day in days]
        self._send(200, json.dumps(body).encode())

    def do_POST(self) -> None:  # noqa: N802
        fake = self.server.fake
        raw = self._read()
        if not self._authorised():
            return
        if self.path == "/v3/mail/send":
            self._mail_send(raw)
        elif self.path == "/v3/mail/batch":
            batch_id = secrets.token_urlsafe(24).replace("-", "a").replace("_", "b")
            with fake.lock:
                fake.batch_ids.add(batch_id)
            self._send(201, json.dumps({"batch_id": batch_id}).encode())
        elif self.path == "/v3/user/scheduled_sends":
            self._scheduled(raw)
        else:
            self._send(404, _errors_json([{"field": None, "message": "not found"}]))

    def _reply(self, behaviour: Reply) -> None:
        """Answer as scripted: a status with SendGrid-style errors and rate-limit headers."""
        fake = self.server.fake
        headers = {}
        if behaviour.status == 429:
            reset = time.time() + (behaviour.reset_in or 0.0)
            headers = {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0",
                       "X-RateLimit-Reset": f"{reset:.3f}"}
        errors = [{"field": f, "message": m, "help": None} for f, m in behaviour.errors]
        with fake.lock:
            fake.rejected.append((behaviour.status, errors))
        self._send(behaviour.status, _errors_json(errors) if errors else b"", headers)

    def _authorised(self) -> bool:
        expected = f"Bearer {self.server.fake.api_key}"
        if self.headers.get("Authorization") != expected:
            self._send(401, _errors_json([{
                "field": None, "message": "The provided authorization grant is invalid, "
                "expired, or revoked", "help": None}]))
            return False
        return True

    def _scheduled(self, raw: bytes) -> None:
        fake = self.server.fake
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(400, _errors_json([{"field": None, "message": "invalid JSON"}]))
            return
        problems = [{"field": ".".join(map(str, e.path)) or None, "message": e.message}
                    for e in validators()["scheduled"].iter_errors(body)]
        batch_id = body.get("batch_id") if isinstance(body, dict) else None
        if not problems and batch_id not in fake.batch_ids:
            problems.append({"field": "batch_id", "message": "invalid batch id"})
        if not problems and batch_id in fake.scheduled:
            problems.append({"field": "batch_id", "message": "batch id already has a status"})
        if problems:
            self._send(400, _errors_json(problems))
            return
        with fake.lock:
            fake.scheduled[batch_id] = body["status"]
        self._send(201, json.dumps(body).encode())

    def _mail_send(self, raw: bytes) -> None:
        fake = self.server.fake
        with fake.lock:
            fake.requests_seen += 1
            fake.bytes_seen += len(raw)
            fake.recipients_seen += raw.count(b'"to":[')
            fake.in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
            held = fake.gate is not None and fake.requests_seen > fake.gate_free
        try:
            if held and fake.gate is not None:
                fake.gate.wait(timeout=60)
            self._mail_send_answer(raw)
        finally:
            with fake.lock:
                fake.in_flight -= 1

    def _mail_send_answer(self, raw: bytes) -> None:
        fake = self.server.fake
        if fake.delay:
            time.sleep(fake.delay)
        behaviour = fake.next_behaviour()
        if behaviour == DROP:
            with fake.lock:
                fake.log.append(("POST", self.path, 0))
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if isinstance(behaviour, Reply):
            self._reply(behaviour)
            return
        if not fake.validate:
            self._send(202)
            return
        if len(raw) > MAX_BODY:
            self._send(413, _errors_json([{"field": None, "message": "Payload too large"}]))
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(400, _errors_json([{"field": None, "message": "Bad Request"}]))
            return
        problems = [{"field": ".".join(map(str, e.path)) or None, "message": e.message,
                     "help": None} for e in validators()["mail"].iter_errors(body)]
        if not problems:
            problems = limit_errors(body, fake.batch_ids, time.time())
        if problems:
            with fake.lock:
                fake.rejected.append((400, problems))
            self._send(400, _errors_json(problems))
            return
        sandbox = bool(((body.get("mail_settings") or {}).get("sandbox_mode") or {})
                       .get("enable"))
        with fake.lock:
            fake.accepted.append(Accepted(body, time.time(), sandbox))
        if behaviour == HANG:
            fake.closing.wait(fake.hang_seconds)
        self._send(200 if sandbox else 202)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, fake: FakeSendGrid) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


@dataclass
class RunningFake:
    """A started fake: the state plus its server and thread."""

    fake: FakeSendGrid
    server: _Server
    thread: threading.Thread

    def stop(self) -> None:
        self.fake.closing.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def start_fake(fake: FakeSendGrid | None = None) -> RunningFake:
    """Start a fake SendGrid on a free port of 127.0.0.1 (in a background thread)."""
    fake = fake or FakeSendGrid()
    server = _Server(fake)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    return RunningFake(fake, server, thread)


@pytest.fixture
def fake_sendgrid(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSendGrid]:
    """A running fake SendGrid; SENDGRID_API_HOST and SENDGRID_API_KEY point at it."""
    running = start_fake()
    monkeypatch.setenv("SENDGRID_API_HOST", running.fake.url)
    monkeypatch.setenv("SENDGRID_API_KEY", running.fake.api_key)
    try:
        yield running.fake
    finally:
        running.stop()


def main(argv: list[str] | None = None) -> None:
    """Serve until killed; print the port. --no-validate accepts without checking."""
    args = sys.argv[1:] if argv is None else argv
    running = start_fake(FakeSendGrid(validate="--no-validate" not in args))
    print(f"PORT {running.server.server_address[1]}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        running.stop()


if __name__ == "__main__":
    main()


# --- a project with a list to send to ----------------------------------------------------

SECRET = "test-secret-0123456789-abcdefghij"
# A sender of its own: a real send refuses the sample's made-up postal and sender address.
OWN_POSTAL_ADDRESS = "Test Rights Network, Postfach 1234, 80331 München, Germany"
OWN_FROM_EMAIL = "brief@weekly-brief-test.org"


def own_identity(root: Path) -> None:
    """Give the sample project in ``root`` an identity of its own, so real sends may go out."""
    config = root / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8")
                      .replace("Example Rights Network, Postfach", "Test Rights Network, Postfach")
                      .replace('from_email = "brief@example.org"',
                               f'from_email = "{OWN_FROM_EMAIL}"'), encoding="utf-8")


def populate(project: Any, slug: str, count: int, *, start: int = 0) -> None:
    """Create list ``slug`` (if needed) and import ``count`` people user<i>@example.org."""
    from newsletter.store import get_or_create_list, open_project_database
    from newsletter.store.importer import import_csv

    database = open_project_database(project)
    try:
        with database.transaction() as session:
            get_or_create_list(session, slug, slug.title())
        csv = project.root / f"{slug}-{start}.csv"
        csv.write_text("email,name\n" + "".join(
            f"user{i}@example.org,User {i}\n" for i in range(start, start + count)
        ), encoding="utf-8")
        import_csv(database.engine, csv, slug)
        csv.unlink()
    finally:
        database.dispose()


def store_as_an_older_version_did(project: Any, old: str, new: str) -> None:
    """Give subscriber ``old`` the address ``new`` behind the store's back, as a database made
    before non-ASCII letters before the @ were refused may hold it (``josé@example.org``)."""
    from sqlalchemy import text

    from newsletter.store import open_project_database

    database = open_project_database(project)
    try:
        with database.transaction() as session:
            # The key as the store makes it (email_key: str.lower), on every database.
            session.execute(text("UPDATE subscribers SET email = :new, email_key = :key "
                                 "WHERE email = :old"), {"new": new, "key": new.lower(),
                                                         "old": old})
    finally:
        database.dispose()


@pytest.fixture
def send_project(sample_project: Path, fake_sendgrid: FakeSendGrid,
                 monkeypatch: pytest.MonkeyPatch) -> Any:
    """The sample project with NEWSLETTER_SECRET set and a list 'weekly' of 25 people."""
    from newsletter.project import Project

    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    own_identity(sample_project)
    project = Project(sample_project)
    populate(project, "weekly", 25)
    return project


@pytest.fixture
def builder(sample_project: Path) -> Any:
    """The sample issue's Mail Send body builder, as a send to "weekly" makes it."""
    from newsletter.delivery.requests import RequestBuilder
    from newsletter.issue import load_issue
    from newsletter.project import Project
    from newsletter.render import render_email

    project = Project(sample_project)
    issue = load_issue(project.issues_dir / "2021-02-01.yaml", project.issue_files())
    rendered = render_email(project, issue, for_sending=True)
    return RequestBuilder(project.config, rendered, issue_name=issue.name, list_slug="weekly",
                          secret=b"x" * 32, campaign_id=7)
