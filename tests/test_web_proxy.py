"""Whose X-Forwarded-For/-Proto the service believes ([web] trusted_proxies), in process."""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from newsletter.config import parse_config
from newsletter.errors import ConfigError, NewsletterError
from newsletter.web.proxy import ProxyHeadersMiddleware, parse_networks, trusted_from_env
from tests.conftest import REPO


async def echo(request: Request) -> JSONResponse:
    response = JSONResponse({"client": request.client.host if request.client else None,
                             "scheme": request.url.scheme})
    response.set_cookie("a", "1", httponly=True)
    response.set_cookie("b", "2", secure=True)
    return response


def _get(trusted: list[str], peer: str, headers: dict[str, str]) -> httpx.Response:
    async def go() -> httpx.Response:
        app = Starlette(routes=[Route("/", echo)])
        wrapped = ProxyHeadersMiddleware(app, parse_networks(trusted))
        transport = httpx.ASGITransport(app=wrapped, client=(peer, 5555))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/", headers=headers)

    # In a thread of its own: Playwright's sync API (browser tests) keeps an event loop
    # running in the main thread, where asyncio.run() refuses to start.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result(timeout=30)


SPOOF = {"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "https"}


def test_nobody_is_trusted_by_default() -> None:
    answer = _get([], "127.0.0.1", SPOOF)
    assert answer.json() == {"client": "127.0.0.1", "scheme": "http"}
    assert all("secure" not in c.lower() or c.startswith("b=")
               for c in answer.headers.get_list("set-cookie"))


def test_a_trusted_proxy_names_the_visitor_and_https() -> None:
    answer = _get(["127.0.0.1"], "127.0.0.1", SPOOF)
    assert answer.json() == {"client": "203.0.113.5", "scheme": "https"}
    cookies = answer.headers.get_list("set-cookie")
    assert len(cookies) == 2 and all(c.count("; Secure") + c.count("; secure") == 1
                                     for c in cookies), cookies


def test_the_visitor_is_the_right_most_untrusted_hop() -> None:
    # The visitor wrote "1.1.1.1" themselves; the CDN (trusted) appended their real address.
    headers = {"X-Forwarded-For": "1.1.1.1, 198.51.100.8, 10.0.0.7"}
    answer = _get(["127.0.0.1", "10.0.0.0/8"], "127.0.0.1", headers)
    assert answer.json()["client"] == "198.51.100.8"


def test_an_untrusted_peer_cannot_choose_its_address() -> None:
    answer = _get(["10.0.0.0/8"], "192.0.2.1", SPOOF)
    assert answer.json() == {"client": "192.0.2.1", "scheme": "http"}


def test_the_environment_overrides_the_file_and_bad_values_are_explained(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEWSLETTER_TRUSTED_PROXIES", "10.1.0.0/16, ::1")
    assert [str(n) for n in trusted_from_env(["127.0.0.1"])] == ["10.1.0.0/16", "::1/128"]
    monkeypatch.setenv("NEWSLETTER_TRUSTED_PROXIES", "proxy.local")
    with pytest.raises(NewsletterError, match="proxy.local"):
        trusted_from_env([])


def test_trusted_proxies_in_newsletter_toml(tmp_path: Path) -> None:
    base = (REPO / "newsletter.toml").read_text()
    path = tmp_path / "newsletter.toml"
    assert parse_config(base, path).web.trusted_proxies == []
    config = parse_config(base + '\n[web]\ntrusted_proxies = ["127.0.0.1", "10.0.0.0/8"]\n',
                          path)
    assert config.web.trusted_proxies == ["127.0.0.1", "10.0.0.0/8"]
    with pytest.raises(ConfigError) as caught:
        parse_config(base + '\n[web]\ntrusted_proxies = ["localhost"]\n', path)
    message = str(caught.value)
    assert f"{path}:" in message and "[web] trusted_proxies" in message
    assert '"localhost" is not an address or network' in message
