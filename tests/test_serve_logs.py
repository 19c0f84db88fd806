"""`newsletter serve` as an operator runs it: several workers, its log lines, scrubbed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from newsletter.project import Project
from newsletter.store import create_list, open_project_database
from newsletter.web.logs import mask_emails, scrub
from tests.plugins.waiting import wait_until
from tests.servers import free_port
from tests.test_proxy_nginx import _link, _outbox
from tests.test_web import SECRET

ADDRESS = "ann.lee@example.org"
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|"
                       r"CRITICAL) [a-z][\w.]*: ")


def _serve(root: Path, log: Path, *args: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "NEWSLETTER_SECRET": SECRET}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "serve", "--port", str(port), *args],
            cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=out)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(up, 90, "newsletter serve did not start", interval=0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def _use(base: str, root: Path) -> None:
    """A visit that would put an address and a token in the logs, if they were not hidden."""
    with httpx.Client(base_url=base, timeout=30) as client:
        assert client.get(f"/subscribe/weekly?email={ADDRESS}").status_code == 200
        assert client.post("/subscribe/weekly", json={"email": ADDRESS}).status_code == 200
        confirm = _link(_outbox(root, ADDRESS, 1)[0], "confirm")
        assert client.get(confirm).status_code == 200
        assert client.get(confirm + "x").status_code == 400


@pytest.fixture
def project(sample_project: Path) -> Path:
    db = open_project_database(Project(sample_project))
    with db.transaction() as session:
        create_list(session, "weekly", "Weekly Brief", double_opt_in=True)
    db.dispose()
    return sample_project


def _hidden(output: str, root: Path) -> None:
    assert ADDRESS not in output and "a***@example.org" in output
    assert SECRET not in output
    tokens = [m for m in re.findall(r"/confirm/([^\s\"?]+)", output) if m != "[token]"]
    assert not tokens, tokens


def test_json_logs_from_two_workers(project: Path, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    for base in _serve(project, log, "--workers", "2", "--log-format", "json"):
        _use(base, project)
    lines = log.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "component", "message"} <= set(r) for r in records)
    assert all(re.match(r"\d{4}-\d\d-\d\dT.*Z$", r["time"]) for r in records)
    components = {r["component"] for r in records}
    assert {"server", "access"} <= components
    workers = {m.group(1) for r in records
               if (m := re.match(r"Started server process \[(\d+)\]", r["message"]))}
    assert len(workers) == 2, "two worker processes should have started"
    assert any(r["component"] == "access" and "127.0.0.1" in r["message"] for r in records)
    _hidden(log.read_text(), project)


def test_text_logs_have_time_level_and_component_on_every_line(project: Path,
                                                               tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    for base in _serve(project, log):
        _use(base, project)
    lines = log.read_text().splitlines()
    assert lines and all(TEXT_LINE.match(line) for line in lines), lines
    assert any(" INFO access: " in line for line in lines)
    _hidden(log.read_text(), project)


def test_scrub_hides_addresses_tokens_passwords_and_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.very-secret-key-value")
    line = ("mail to Ann.Lee+news@Example.org failed; key SG.very-secret-key-value; "
            "postgresql://app:hunter2@db/news; GET /unsubscribe/abc.def")
    cleaned = scrub(line)
    assert "Ann.Lee" not in cleaned and "A***@Example.org" in cleaned
    assert "very-secret" not in cleaned and "hunter2" not in cleaned
    assert "abc.def" not in cleaned and "/unsubscribe/[token]" in cleaned
    assert mask_emails("x@y.org") == "x***@y.org"
