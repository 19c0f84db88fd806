"""Debian's nginx, configured from docs/deploy/nginx.conf, in front of two `newsletter serve`.

The visitor connects from 127.0.0.2, nginx (the trusted proxy) from 127.0.0.1, so
the address the service sees tells who it believed. nginx terminates TLS with a
certificate made for the test.
"""

from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from newsletter.project import Project
from newsletter.store import create_list, memberships, open_project_database
from newsletter.store.ratelimits import RateLimitCount
from newsletter.web.security import rate_key
from tests.plugins.waiting import wait_until
from tests.servers import free_port
from tests.test_web import SECRET
from tests.test_web_webhook import Signer, event

REPO = Path(__file__).resolve().parent.parent
SNIPPET = REPO / "docs" / "deploy" / "nginx.conf"
NGINX = "/usr/sbin/nginx"
VISITOR = "127.0.0.2"  # the visitor's address; nginx connects from 127.0.0.1


def _need_nginx() -> None:
    if os.path.exists(NGINX):
        return
    message = "nginx is not installed: sudo apt-get install nginx (or make system-deps)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def nginx_config(tmp: Path, upstreams: list[int], http_port: int, https_port: int,
                 cert: Path, key: Path) -> str:
    """The shipped snippet with test ports and paths, inside a minimal nginx.conf."""
    snippet = SNIPPET.read_text()
    snippet = re.sub(r"\n\s*listen \[::\]:\d+[^;]*;", "", snippet)
    snippet = snippet.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    snippet = snippet.replace("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
    snippet = snippet.replace("/etc/letsencrypt/live/news.example.org/fullchain.pem", str(cert))
    snippet = snippet.replace("/etc/letsencrypt/live/news.example.org/privkey.pem", str(key))
    servers = "".join(f"server 127.0.0.1:{port};\n    " for port in upstreams)
    assert "server 127.0.0.1:8000;" in snippet
    snippet = snippet.replace("server 127.0.0.1:8000;\n    ", servers)
    user = "user root;\n" if os.geteuid() == 0 else ""  # temp files stay readable
    return f"""{user}daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{snippet}
}}
"""


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "news.example.org")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@dataclass
class Stack:
    root: Path
    https: str
    http: str
    serves: list[str]  # direct addresses of the serve processes
    logs: list[Path]
    signer: Signer

    def client(self, base: str) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=VISITOR, verify=False)
        return httpx.Client(base_url=base, transport=transport, timeout=30)


def _wait_for(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    def up() -> bool:
        assert process.poll() is None, f"{what} stopped"
        try:
            httpx.get(url, timeout=1, verify=False)
        except httpx.TransportError:
            return False
        return True

    wait_until(up, 60, f"{what} did not start", interval=0.1)


@pytest.fixture
def stack(sample_project: Path, tmp_path: Path) -> Iterator[Stack]:
    _need_nginx()
    config = sample_project / "newsletter.toml"
    config.write_text(config.read_text() + '\n[web]\ntrusted_proxies = ["127.0.0.1"]\n')
    db = open_project_database(Project(sample_project))
    with db.transaction() as session:
        create_list(session, "weekly", "Weekly Brief", double_opt_in=True)
    db.dispose()
    signer = Signer()
    env = {**os.environ, "NEWSLETTER_SECRET": SECRET,
           "SENDGRID_WEBHOOK_PUBLIC_KEY": signer.public_b64}
    env.pop("NEWSLETTER_TRUSTED_PROXIES", None)
    ports = [free_port(), free_port()]
    processes: list[subprocess.Popen[bytes]] = []
    logs = [tmp_path / f"serve-{n}.log" for n in range(2)]
    nginx_dir = tmp_path / "nginx"
    nginx_dir.mkdir()
    try:
        for port, log in zip(ports, logs, strict=True):
            with log.open("wb") as out:
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "newsletter", "serve", "--port", str(port)],
                    cwd=sample_project, env=env, stdout=out, stderr=subprocess.STDOUT))
        for port, process in zip(ports, processes, strict=True):
            _wait_for(f"http://127.0.0.1:{port}/healthz", process, "newsletter serve")
        http_port, https_port = free_port(), free_port()
        cert, key = self_signed(nginx_dir)
        conf = nginx_dir / "nginx.conf"
        conf.write_text(nginx_config(nginx_dir, ports, http_port, https_port, cert, key))
        checked = subprocess.run([NGINX, "-t", "-c", str(conf)], capture_output=True,
                                 text=True)
        assert checked.returncode == 0, checked.stderr
        nginx = subprocess.Popen([NGINX, "-c", str(conf)], stderr=subprocess.PIPE)
        processes.append(nginx)
        _wait_for(f"https://127.0.0.1:{https_port}/healthz", nginx, "nginx")
        yield Stack(sample_project, f"https://127.0.0.1:{https_port}",
                    f"http://127.0.0.1:{http_port}", [f"http://127.0.0.1:{p}" for p in ports],
                    logs, signer)
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _rate_keys(root: Path) -> set[str]:
    db = open_project_database(Project(root))
    try:
        with db.session() as session:
            return set(session.scalars(select(RateLimitCount.key)))
    finally:
        db.dispose()


def _outbox(root: Path, to: str, count: int) -> list[email.message.EmailMessage]:
    folder = root / "outbox" / "transactional"

    def found() -> list[email.message.EmailMessage]:
        messages = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                    for p in sorted(folder.glob("*.eml"))] if folder.is_dir() else []
        mine = [m for m in messages if m["To"] == to]
        return mine if len(mine) >= count else []

    return wait_until(found, 20, f"no email number {count} to {to}")  # type: ignore[return-value]


def _link(message: email.message.EmailMessage, kind: str) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    match = re.search(rf"https?://[^/\s]+(/{kind}/[A-Za-z0-9_.-]+)", part.get_content())
    assert match
    return match.group(1)


def test_visitor_addresses_and_secure_cookies_arrive_through_nginx(stack: Stack) -> None:
    with stack.client(stack.https) as client:
        form = client.get("/subscribe/weekly", headers={"X-Forwarded-For": "203.0.113.9"})
        assert form.status_code == 200
        cookie = form.headers["set-cookie"]
        assert "; Secure" in cookie and "strict-transport-security" in form.headers
        signed_up = client.post("/subscribe/weekly", json={"email": "via@example.org"},
                                headers={"X-Forwarded-For": "198.51.100.7"})
        assert signed_up.status_code == 200
    keys = _rate_keys(stack.root)
    assert rate_key("ip", VISITOR) in keys  # the visitor, not nginx, and not the spoof
    assert rate_key("ip", "127.0.0.1") not in keys
    assert rate_key("ip", "198.51.100.7") not in keys
    with stack.client(stack.http) as client:
        moved = client.get("/subscribe/weekly")
        assert moved.status_code == 301 and moved.headers["location"].startswith("https://")


def test_forwarding_headers_from_an_untrusted_peer_are_ignored(stack: Stack) -> None:
    with stack.client(stack.serves[0]) as client:  # straight to serve, not through nginx
        spoofed = {"X-Forwarded-For": "192.0.2.44", "X-Forwarded-Proto": "https"}
        form = client.get("/subscribe/weekly", headers=spoofed)
        assert form.status_code == 200
        assert "secure" not in form.headers["set-cookie"].lower()
        assert "strict-transport-security" not in form.headers
        answer = client.post("/subscribe/weekly", json={"email": "direct@example.org"},
                             headers=spoofed)
        assert answer.status_code == 200
    keys = _rate_keys(stack.root)
    assert rate_key("ip", VISITOR) in keys and rate_key("ip", "192.0.2.44") not in keys


def test_a_5_mb_signed_webhook_batch_passes_nginx(stack: Stack) -> None:
    rng = random.Random(5)
    padding = "".join(rng.choice("abcdefghij") for _ in range(5000))
    events = [event("processed", f"p{n}@example.org", note=padding) for n in range(1000)]
    body = json.dumps(events).encode()
    assert len(body) > 5_000_000
    with stack.client(stack.https) as client:
        answer = client.post("/webhooks/sendgrid", content=body,
                             headers=stack.signer.headers(body))
    assert answer.status_code == 200, answer.text
    assert answer.json()["received"] == 1000


def test_sign_up_confirm_and_unsubscribe_across_two_serve_processes(stack: Stack) -> None:
    address = "both@example.org"
    with stack.client(stack.https) as client:
        assert client.post("/subscribe/weekly", json={"email": address}).status_code == 200
        confirm = _link(_outbox(stack.root, address, 1)[0], "confirm")
        for _ in range(2):  # round robin: the page and the click reach both processes
            assert client.get(confirm).status_code == 200
        assert client.post(confirm).status_code == 200
        welcome = _outbox(stack.root, address, 2)[-1]
        unsubscribe = _link(welcome, "unsubscribe")
        assert client.get(unsubscribe).status_code == 200
        done = client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200
    # uvicorn writes its access line before it sends the answer.
    served = [log.read_text() for log in stack.logs]
    assert all('"GET /confirm/[token]' in text or '"POST /confirm/[token]' in text
               for text in served), "both serve processes should have answered"
    db = open_project_database(Project(stack.root))
    try:
        with db.session() as session:
            (membership,) = memberships(session, address)
            assert membership.status == "unsubscribed"
    finally:
        db.dispose()
