"""Run an ASGI app under a real uvicorn server on 127.0.0.1 for a test."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from tests.plugins.waiting import wait_until

_TRACKERS: dict[str, _Tracked] = {}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Tracked:
    """Wraps an ASGI app and counts the HTTP requests it is still working on.

    An ASGI call returns only after the response's background tasks (the sign-up
    emails) have run, so "no request in flight" means all their work is done.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.active = 0
        self.lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with self.lock:
            self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            with self.lock:
                self.active -= 1


def wait_idle(base_url: str, timeout: float = 10) -> None:
    """Wait until the server at ``base_url`` has finished every request it received.

    Call it after the client got its answers: background work of those requests
    (emails sent after the answer) is then finished too.
    """
    tracked = _TRACKERS[base_url]
    wait_until(lambda: tracked.active == 0, timeout,
               f"the server at {base_url} still had {tracked.active} request(s) in progress")


@contextlib.contextmanager
def serve_asgi(app: object, lifespan: str = "off") -> Iterator[str]:
    """Serve ``app`` in a thread; yield its base URL; stop it afterwards.

    ``lifespan="on"`` runs the app's start-up and shut-down (its background tasks).
    """
    port = free_port()
    tracked = _Tracked(app)
    server = uvicorn.Server(
        uvicorn.Config(tracked, host="127.0.0.1", port=port, log_level="warning",
                       lifespan=lifespan)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), 10, "uvicorn did not start")
    assert server.started, "uvicorn stopped before it started serving"
    url = f"http://127.0.0.1:{port}"
    _TRACKERS[url] = tracked
    try:
        yield url
    finally:
        del _TRACKERS[url]
        server.should_exit = True
        thread.join(timeout=10)
