"""A local web server and DNS server for the preflight tests (no internet)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dnslib.server import DNSServer
from dnslib.zoneresolver import ZoneResolver
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from newsletter.preflight.spam import NO_LEARNING
from tests.plugins.waiting import wait_until
from tests.servers import free_port, serve_asgi

SLOW_SECONDS = 2.0  # longer than the tests' preflight timeout (0.3 s)


def picture(width: int, height: int, *, noise: bool = False, kind: str = "PNG") -> bytes:
    """A picture of this size; ``noise`` makes it incompressible (so bytes ≈ 3 × pixels)."""
    if noise:
        data = random.Random(width * 7919 + height).randbytes(width * height * 3)
        image = Image.frombytes("RGB", (width, height), data)
    else:
        image = Image.new("RGB", (width, height), (40, 90, 160))
    out = io.BytesIO()
    image.save(out, kind)
    return out.getvalue()


PICTURES = {
    "small.png": picture(128, 128, noise=True),  # about 50 KB
    "huge.png": picture(1000, 1000, noise=True),  # about 3 MB
    "narrow.png": picture(100, 60),
    "wide.png": picture(2000, 100),
}


def _app() -> Starlette:
    async def ok(_: Request) -> Response:
        return Response("<html><body>ok</body></html>", media_type="text/html")

    async def moved(_: Request) -> Response:
        return RedirectResponse("/ok", status_code=301)

    async def status(request: Request) -> Response:
        return Response("no", status_code=int(request.path_params["code"]))

    async def slow(_: Request) -> Response:
        await asyncio.sleep(SLOW_SECONDS)
        return Response("late")

    async def image(request: Request) -> Response:
        return Response(PICTURES[request.path_params["name"]], media_type="image/png")

    return Starlette(routes=[
        Route("/ok", ok, methods=["GET", "HEAD"]),
        Route("/moved", moved, methods=["GET", "HEAD"]),
        Route("/status/{code:int}", status, methods=["GET", "HEAD"]),
        Route("/slow", slow, methods=["GET", "HEAD"]),
        Route("/img/{name}", image, methods=["GET", "HEAD"]),
    ])


@contextlib.contextmanager
def web_server() -> Iterator[str]:
    """The test site; yields its base URL."""
    with serve_asgi(_app()) as url:
        yield url


ZONE = """
complete.example.com. 60 IN MX 10 mail.complete.example.com.
complete.example.com. 60 IN TXT "v=spf1 include:sendgrid.net ~all"
s1._domainkey.complete.example.com. 60 IN CNAME s1.domainkey.u1.wl.sendgrid.net.
s2._domainkey.complete.example.com. 60 IN CNAME s2.domainkey.u1.wl.sendgrid.net.
_dmarc.complete.example.com. 60 IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@complete.example.com"
nodmarc.example.com. 60 IN MX 10 mail.nodmarc.example.com.
nodmarc.example.com. 60 IN TXT "v=spf1 include:_spf.example.net ~all"
s1._domainkey.nodmarc.example.com. 60 IN CNAME s1.domainkey.u1.wl.sendgrid.net.
s2._domainkey.nodmarc.example.com. 60 IN CNAME s2.domainkey.u1.wl.sendgrid.net.
"""


@contextlib.contextmanager
def dns_server() -> Iterator[str]:
    """A DNS server on 127.0.0.1 answering for complete.example.com and nodmarc.example.com; yields
    "127.0.0.1:PORT" for NEWSLETTER_DNS_SERVER."""
    port = free_port()
    server = DNSServer(ZoneResolver(ZONE), address="127.0.0.1", port=port,
                       logger=_Quiet())
    server.start_thread()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()


class _Quiet:
    def __getattr__(self, _name: str) -> object:
        return lambda *args, **kwargs: None


def point_at(root: Path, base: str, urls: list[str]) -> None:
    """Make the sample project's links local: item links from ``urls`` (in turn), the
    archive and service at ``base``, no logo."""
    issue = root / "issues" / "2021-02-01.yaml"
    counter = iter(range(10_000))
    text = re.sub(r"(?m)^(\s+url: ).*$",
                  lambda m: m.group(1) + base + urls[next(counter) % len(urls)],
                  issue.read_text(encoding="utf-8"))
    issue.write_text(text, encoding="utf-8")
    config = root / "newsletter.toml"
    text = config.read_text(encoding="utf-8").replace("https://news.example.org", base)
    text = re.sub(r"(?m)^logo_url = .*$", "", text)
    config.write_text(text, encoding="utf-8")




def spamd_binary() -> str | None:
    """Debian's spamd (package spamd, in /usr/sbin), or None."""
    return shutil.which("spamd", path=f"{os.environ.get('PATH', '')}:/usr/sbin")


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def spamd_server(spamd: str) -> Iterator[str]:
    """A spamd of its own on 127.0.0.1 (local tests only, as the current user); yields
    "127.0.0.1:PORT" for NEWSLETTER_SPAMD once its port accepts connections."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="spamd-") as folder:
        log = Path(folder) / "spamd.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [spamd, "--local", "--nouser-config", NO_LEARNING, f"--listen=127.0.0.1:{port}",
                 "--min-children=1", "--max-children=2", "--syslog=stderr",
                 f"--pidfile={folder}/spamd.pid"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(lambda: process.poll() is not None or _accepts(port), timeout=120,
                       message="spamd did not start listening")
            if process.poll() is not None:
                raise RuntimeError(f"spamd exited: {log.read_text(errors='replace')[-2000:]}")
            yield f"127.0.0.1:{port}"
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)  # spamd and the children it forked
            process.wait(timeout=30)
