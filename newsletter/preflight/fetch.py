"""Fetching over HTTP for the link and image checks: few at once, politely, with a timeout."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from .. import __version__

MAX_AT_ONCE = 8
MAX_PER_HOST = 2
TIMEOUT = 10.0
TIMEOUT_ENV = "NEWSLETTER_PREFLIGHT_TIMEOUT"  # seconds; tests shorten it
USER_AGENT = (
    f"Mozilla/5.0 (compatible; newsletter/{__version__}; checks the links of a newsletter "
    "before it is sent)"
)
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # enough to measure any picture that could be in an email


def timeout_seconds() -> float:
    """The per-request timeout: NEWSLETTER_PREFLIGHT_TIMEOUT, else 10 s."""
    try:
        return float(os.environ.get(TIMEOUT_ENV, "") or TIMEOUT)
    except ValueError:
        return TIMEOUT


@dataclass
class Answer:
    """What one address answered (or why it did not)."""

    url: str
    status: int = 0
    final_url: str = ""
    redirects: list[str] = field(default_factory=list)
    content_type: str = ""
    body: bytes = b""
    error: str = ""  # "" when the server answered
    unreachable: bool = False  # DNS failure, refused connection: maybe no network at all

    @property
    def ok(self) -> bool:
        return not self.error and 200 <= self.status < 300


def _problem(exc: httpx.HTTPError) -> tuple[str, bool]:
    if isinstance(exc, httpx.TimeoutException):
        return "no answer within the time limit", False
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        if "name" in text or "resolution" in text or "known" in text:
            return "the site's name does not exist (DNS)", True
        return "the connection was refused", True
    if isinstance(exc, httpx.TooManyRedirects):
        return "too many redirects", False
    return f"the request failed ({type(exc).__name__})", False


class Fetcher:
    """At most 8 requests at once and 2 per host, each with a timeout."""

    def __init__(self, timeout: float | None = None) -> None:
        self.timeout = timeout if timeout is not None else timeout_seconds()
        self._all = asyncio.Semaphore(MAX_AT_ONCE)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self.client = httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT}, follow_redirects=True, max_redirects=10,
            timeout=httpx.Timeout(self.timeout),
            limits=httpx.Limits(max_connections=MAX_AT_ONCE),
        )

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.client.aclose()

    def _host(self, url: str) -> asyncio.Semaphore:
        host = urlsplit(url).netloc.lower()
        return self._hosts.setdefault(host, asyncio.Semaphore(MAX_PER_HOST))

    async def fetch(self, url: str, *, body: bool = False) -> Answer:
        """HEAD (GET when ``body`` is wanted, or when HEAD is refused), following redirects."""
        async with self._all, self._host(url):
            answer = Answer(url)
            try:
                async with asyncio.timeout(self.timeout * 2):
                    if not body:
                        response = await self.client.head(url)
                        if response.status_code < 400:
                            return _fill(answer, response, b"")
                    async with self.client.stream("GET", url) as response:
                        data = b""
                        if body:
                            async for chunk in response.aiter_bytes():
                                data += chunk
                                if len(data) > MAX_IMAGE_BYTES:
                                    break
                        return _fill(answer, response, data)
            except httpx.HTTPError as exc:
                answer.error, answer.unreachable = _problem(exc)
            except TimeoutError:
                answer.error = "no answer within the time limit"
            return answer


def _fill(answer: Answer, response: httpx.Response, data: bytes) -> Answer:
    answer.status = response.status_code
    answer.final_url = str(response.url)
    answer.redirects = [str(r.url) for r in response.history]
    answer.content_type = response.headers.get("content-type", "").split(";")[0].strip()
    answer.body = data
    return answer
