"""The web service on PostgreSQL, including a real database outage (the connection is cut)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from newsletter.project import Project
from newsletter.store import open_database
from newsletter.store.events import campaign_stats
from newsletter.web.app import create_app
from newsletter.web.webhook import WebhookVerifier
from tests.servers import serve_asgi
from tests.test_web import SECRET
from tests.test_web_webhook import Signer, event

pytestmark = pytest.mark.postgres


class Cable:
    """A TCP forwarder between the app and PostgreSQL that the test can unplug."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None

    def plug(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def unplug(self) -> None:
        if self._listener is not None:
            _shut(self._listener)  # wakes the thread in accept(); close() alone would not
            self._listener.close()
            self._listener = None
        for sock in self._sockets:
            _shut(sock)
            sock.close()
        self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _shut(source)
            _shut(sink)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def cable(postgres_url: str) -> Iterator[tuple[Cable, str]]:
    url = make_url(postgres_url)
    cable = Cable((url.host or "127.0.0.1", url.port or 5432))
    cable.plug()
    yield cable, url.set(host="127.0.0.1", port=cable.port).render_as_string(hide_password=False)
    cable.unplug()


def test_webhook_on_postgresql_survives_an_outage(
    sample_project: Path, cable: tuple[Cable, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wire, url = cable
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    db = open_database(url)
    signer = Signer()
    app = create_app(Project(sample_project), database=db,
                     verifier=WebhookVerifier(signer.public_b64))
    def post(client: httpx.Client, batch: list) -> httpx.Response:
        body = json.dumps(batch).encode()
        return client.post("/webhooks/sendgrid", content=body, headers=signer.headers(body))

    first = [event("delivered", "a@example.org"), event("open", "a@example.org")]
    second = [event("spamreport", "a@example.org"), event("click", "a@example.org")]
    try:
        with serve_asgi(app) as base, httpx.Client(base_url=base, timeout=30) as client:
            assert post(client, first).json()["new"] == 2
            assert post(client, first).json()["duplicates"] == 2
            wire.unplug()  # the database server is gone
            answer = post(client, second)
            assert answer.status_code == 503 and answer.headers["retry-after"]
            assert "password" not in answer.text and "Traceback" not in answer.text
            assert client.get("/healthz").status_code == 503
            wire.plug()  # back: SendGrid's retry of the same batch goes through
            answer = post(client, second)
            assert answer.status_code == 200 and answer.json()["new"] == 2
            assert client.get("/healthz").status_code == 200
        with db.transaction() as session:
            assert campaign_stats(session, 7) == {"delivered": 1, "open": 1, "spamreport": 1,
                                                  "click": 1}
    finally:
        db.dispose()


def test_signup_confirm_and_unsubscribe_on_postgresql(
    sample_project: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_web import body_text, link_path, start_service

    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", postgres_url)
    for svc in start_service(sample_project, monkeypatch, verifier=None):
        for _ in range(2):  # twice: nothing twice
            assert svc.client.post("/subscribe/weekly",
                                   json={"email": "pg@example.org"}).status_code == 200
        confirmation = svc.outbox(wait_for=1)[0]
        assert svc.client.post(link_path(body_text(confirmation), "confirm")).status_code == 200
        assert svc.status("pg@example.org", "weekly") == "subscribed"
        welcome = [m for m in svc.outbox(wait_for=3) if "Welcome" in m["Subject"]][0]
        path = link_path(body_text(welcome), "unsubscribe")
        for _ in range(2):
            answer = svc.client.post(path, data={"List-Unsubscribe": "One-Click"})
            assert answer.status_code == 200
        assert svc.status("pg@example.org", "weekly") == "unsubscribed"
