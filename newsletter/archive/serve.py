"""A local static server to preview the archive (`newsletter archive serve`)."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..errors import NewsletterError


class _Handler(SimpleHTTPRequestHandler):
    """Serves files from the site folder; unknown addresses get the site's 404.html."""

    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".js": "text/javascript",
        ".css": "text/css",
        ".xml": "application/xml",
        ".json": "application/json",
    }

    def _inside(self, path: str) -> bool:
        """True if ``path``, symlinks followed, is in the site folder."""
        real = os.path.realpath(path)
        root = os.path.realpath(str(self.directory))
        return os.path.commonpath([real, root]) == root

    def send_head(self):  # type: ignore[no-untyped-def]
        # Never follow a symlink out of the site folder (a link to / would serve
        # /etc/passwd); links that stay inside the folder are fine.
        if not self._inside(self.translate_path(self.path)):
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        return super().send_head()

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        page = Path(self.directory) / "404.html"
        if code != HTTPStatus.NOT_FOUND or not page.is_file() or not self._inside(str(page)):
            return super().send_error(code, message, explain)
        body = page.read_bytes()
        self.send_response(code)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def end_headers(self) -> None:
        # A preview must show the latest build, never a cached page.
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        if not getattr(self.server, "quiet", False):
            super().log_message(format, *args)


def make_server(directory: Path, host: str = "127.0.0.1", port: int = 8000,
                quiet: bool = False) -> ThreadingHTTPServer:
    """An HTTP server for ``directory`` (port 0 picks a free port; see .server_address)."""
    directory = Path(directory)
    if not (directory / "index.html").is_file():
        raise NewsletterError(
            f"{directory} has no index.html; the archive has not been built there yet.",
            hint="Run `newsletter archive build` first.",
        )
    handler = functools.partial(_Handler, directory=str(directory))
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise NewsletterError(
            f"Cannot listen on {host}:{port}: {exc.strerror}.",
            hint="Pick another port, e.g. `newsletter archive serve --port 8001`.",
        ) from None
    server.daemon_threads = True
    server.quiet = quiet  # type: ignore[attr-defined]
    return server


def server_url(server: ThreadingHTTPServer) -> str:
    """http://HOST:PORT/ of a server made by :func:`make_server`."""
    host, port = server.server_address[:2]
    if isinstance(host, bytes):  # only for AF_UNIX sockets, never ours; keeps mypy content
        host = host.decode()
    return f"http://{host}:{port}/"


@contextmanager
def serving(directory: Path, host: str = "127.0.0.1", port: int = 0,
            quiet: bool = True) -> Iterator[str]:
    """Serve ``directory`` in a background thread; yields its base URL."""
    server = make_server(directory, host, port, quiet=quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_url(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def serve(
    directory: Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``directory`` until interrupted (Ctrl+C); ``on_ready`` gets the URL first."""
    server = make_server(directory, host, port)
    if on_ready:
        on_ready(server_url(server))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
