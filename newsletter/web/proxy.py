"""Behind a reverse proxy: whose X-Forwarded-For and X-Forwarded-Proto are believed.

Only a peer listed in ``[web] trusted_proxies`` (addresses or networks; none by
default) may say who the visitor is and whether they came over https. Its
``X-Forwarded-For`` is read from the right: the first address that is not itself a
trusted proxy is the visitor (a client can put anything on the left; nginx's
``$proxy_add_x_forwarded_for`` appends the address it saw). Anyone else's headers
are ignored, so a visitor cannot pick the address the rate limits count.

The result goes into the ASGI scope (``client``, ``scheme``), in place, so the
routes, the rate limits and uvicorn's access log all see the visitor. On https
every cookie the app sets also gets ``Secure``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from functools import lru_cache

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import NewsletterError
from .security import HTTPMiddleware

# Overrides [web] trusted_proxies (`newsletter serve --trusted-proxies` sets it for workers).
TRUSTED_PROXIES_ENV = "NEWSLETTER_TRUSTED_PROXIES"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """The networks of addresses/CIDRs like ``127.0.0.1`` or ``10.0.0.0/8`` ('*': any)."""
    found: list[Network] = []
    for value in values:
        value = value.strip()
        if value == "*":
            found += [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
        elif value:
            try:
                found.append(ipaddress.ip_network(value, strict=False))
            except ValueError:
                raise NewsletterError(
                    f'Trusted proxies: "{value}" is not an address or network.',
                    hint="Write addresses like 127.0.0.1 or networks like 10.0.0.0/8, "
                    "separated by commas.") from None
    return tuple(found)


def trusted_from_env(configured: Iterable[str]) -> tuple[Network, ...]:
    """NEWSLETTER_TRUSTED_PROXIES (comma-separated) if it is set, else ``configured``."""
    override = os.environ.get(TRUSTED_PROXIES_ENV)
    return parse_networks(override.split(",") if override is not None else configured)


@lru_cache(maxsize=4096)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class ProxyHeadersMiddleware(HTTPMiddleware):
    """Believes X-Forwarded-For/-Proto from trusted proxies only; Secure cookies on https."""

    def __init__(self, app: ASGIApp, trusted: tuple[Network, ...] = ()) -> None:
        super().__init__(app)
        self.trusted = trusted

    def is_trusted(self, host: str) -> bool:
        """True if ``host`` (an address) is one of the trusted proxies."""
        address = _address(host)
        return address is not None and any(address in net for net in self.trusted)

    def visitor(self, hops: list[str]) -> str | None:
        """The visitor's address from an X-Forwarded-For list, read from the right."""
        for hop in reversed(hops):
            if not self.is_trusted(hop):
                address = _address(hop)
                return str(address) if address is not None else None
        return str(_address(hops[0])) if hops and _address(hops[0]) else None

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if client and self.trusted and self.is_trusted(client[0]):
            headers = Headers(scope=scope)
            hops = [hop for value in headers.getlist("x-forwarded-for")
                    for hop in value.split(",") if hop.strip()]
            found = self.visitor(hops) if hops else None
            if found:
                scope["client"] = (found, 0)
            proto = headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                scope["scheme"] = proto
        if scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def secure_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                cookies = headers.getlist("set-cookie")
                if cookies:
                    del headers["set-cookie"]
                    for cookie in cookies:
                        secure = any(part.strip().lower() == "secure"
                                     for part in cookie.split(";")[1:])
                        headers.append("set-cookie", cookie if secure else cookie + "; Secure")
            await send(message)

        await self.app(scope, receive, secure_cookies)
