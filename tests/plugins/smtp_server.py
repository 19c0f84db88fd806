"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, STARTTLS with a self-signed
certificate made here, AUTH, and faults injected on demand.

    server.refuse = {"user3@example.org"}        # 550 to RCPT TO
    server.faults = ["451", "421"]               # answers to the next final dots
    server.drop_before_dot = {"user5@..."}       # hang up at that RCPT (message never whole)
    server.drop_after_dot = {"user7@..."}        # keep the message, hang up before the 250
    server.delay = 0.05                          # a slow server: wait before each answer

Every message the server took whole is in ``server.messages`` (recipient, bytes),
including those it hung up on afterwards.

Run on its own (for bench/send.py), it discards messages and prints its port::

    python -m tests.plugins.smtp_server --discard
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

USERNAME = "news@example.org"
PASSWORD = "smtp-test-password-not-real"


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(self, smtp: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        server = self.server
        await server.slow()
        if address in server.drop_before_dot:
            server.drop_before_dot.discard(address)
            assert smtp.transport is not None
            smtp.transport.abort()
            return "250 OK"
        if address in server.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        server = self.server
        await server.slow()
        with server.lock:
            fault = server.faults.pop(0) if server.faults else None
        if fault == "421":
            return "421 4.7.0 Too many connections, closing"
        if fault == "451":
            return "451 4.3.0 Temporary failure, try again later"
        if not server.discard:
            content = envelope.original_content or b""
            with server.lock:
                for rcpt in envelope.rcpt_tos:
                    server.messages.append((rcpt, content))
        else:
            with server.lock:
                server.count += len(envelope.rcpt_tos)
        dropped = set(envelope.rcpt_tos) & server.drop_after_dot
        if dropped:
            server.drop_after_dot -= dropped
            assert smtp.transport is not None
            smtp.transport.abort()
        return "250 2.0.0 OK queued"


class _Auth:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    def __call__(self, smtp: SMTP, session: Session, envelope: Envelope, mechanism: str,
                 auth_data: Any) -> AuthResult:
        if (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == USERNAME
                and auth_data.password.decode() == self.server.password):
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


class SmtpServer:
    """aiosmtpd in a thread of this process, with the faults above."""

    def __init__(self, folder: Path, *, discard: bool = False) -> None:
        self.cert, key = make_certificate(folder)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, key)
        self.password = PASSWORD
        self.discard = discard
        self.count = 0
        self.messages: list[tuple[str, bytes]] = []
        self.refuse: set[str] = set()
        self.faults: list[str] = []
        self.drop_before_dot: set[str] = set()
        self.drop_after_dot: set[str] = set()
        self.delay = 0.0
        self.lock = threading.Lock()
        self.controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=_free_port(), tls_context=context,
            require_starttls=True, authenticator=_Auth(self), auth_require_tls=True,
            server_hostname="localhost", ready_timeout=10,
        )

    async def slow(self) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def delivered(self) -> Counter[str]:
        """How many messages each recipient got."""
        with self.lock:
            return Counter(rcpt for rcpt, _ in self.messages)

    def smtp_table(self, **extra: Any) -> str:
        """An [smtp] table of newsletter.toml for this server."""
        values: dict[str, Any] = {"host": "127.0.0.1", "port": self.port,
                                  "security": "starttls", "username": USERNAME,
                                  "ca_file": str(self.cert), **extra}
        lines = ["", "[smtp]"]
        for name, value in values.items():
            lines.append(f"{name} = {value!r}".replace("'", '"') if isinstance(value, str)
                         else f"{name} = {value}")
        return "\n".join(lines) + "\n"


def running(folder: Path) -> Iterator[SmtpServer]:
    """A running test SMTP server (STARTTLS, AUTH) on 127.0.0.1, stopped afterwards."""
    server = SmtpServer(folder).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[SmtpServer]:
    """A running test SMTP server (for conftest's pytest_plugins)."""
    yield from running(tmp_path / "smtp-tls")


def _main() -> None:  # pragma: no cover - for bench/send.py
    import tempfile
    import time

    server = SmtpServer(Path(tempfile.mkdtemp()), discard="--discard" in sys.argv).start()
    print("port", server.port, server.cert, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    _main()
