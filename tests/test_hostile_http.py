"""Hostile requests to the web service: each is refused cleanly, and the log stays calm.

Every case goes through a real uvicorn server. It must get a 4xx answer with no
traceback in it, and leave nothing at ERROR level (or with a traceback) in the
service's log or uvicorn's: anyone on the internet can send these, so they must
neither crash a route nor flood the log and trip alerts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from newsletter.archive import serving
from newsletter.store import Subscriber, find_subscriber
from newsletter.web.context import Limits
from newsletter.web.webhook import WebhookVerifier
from tests.servers import wait_idle
from tests.test_web import Service, body_text, form_token, start_service
from tests.test_web_webhook import Signer

WEBHOOK = "/webhooks/sendgrid"
LIMITS = Limits(webhook_body=100_000)


class Collect(logging.Handler):
    """Keeps every record it sees."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Hostile:
    """A running service with a signer for its webhook and a view of its log."""

    service: Service
    signer: Signer
    log: Collect

    @property
    def client(self) -> httpx.Client:
        return self.service.client

    def loud_records(self) -> list[str]:
        """Log lines at ERROR or above, or with a traceback, since the service started."""
        wait_idle(self.service.url)  # work still running after the answer logs too
        return [f"{r.levelname} {r.name}: {r.getMessage()}" for r in self.log.records
                if r.levelno >= logging.ERROR or r.exc_info]


@pytest.fixture
def hostile(sample_project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hostile]:
    signer = Signer()
    for service in start_service(sample_project, monkeypatch, limits=LIMITS,
                                 verifier=WebhookVerifier(signer.public_b64)):
        collect = Collect()
        # uvicorn's loggers do not propagate to the root: listen to them directly.
        # (After the server started: uvicorn's logging set-up replaces their handlers.)
        watched = [logging.getLogger(), logging.getLogger("uvicorn"),
                   logging.getLogger("uvicorn.error")]
        for logger in watched:
            logger.addHandler(collect)
        try:
            yield Hostile(service, signer, collect)
        finally:
            for logger in watched:
                logger.removeHandler(collect)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_object(depth: int) -> bytes:
    return b'{"email": ' + nested(depth) + b"}"


def chunks(total: int) -> Iterator[bytes]:
    """A body sent without Content-Length (chunked): counted as it arrives."""
    for _ in range(total // 1024):
        yield b"x" * 1024


JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}

# (id, path, body, headers, statuses allowed); webhook bodies are signed correctly,
# so they reach the parsing behind the signature check.
Case = tuple[str, str, Any, dict[str, str], tuple[int, ...]]
CASES: list[Case] = [
    ("json-nested-100k", "/subscribe/alerts", nested(100_000), JSON, (400, 413)),
    ("json-nested-5000", "/subscribe/alerts", nested(5000), JSON, (400,)),
    ("json-nested-in-field", "/subscribe/alerts", deep_object(200), JSON, (400,)),
    ("json-nested-under-parser-limit", "/subscribe/alerts", deep_object(100), JSON, (400,)),
    ("json-not-object", "/subscribe/alerts", b'["a@example.org"]', JSON, (400,)),
    ("json-huge-number", "/subscribe/alerts", b'{"email": 1' + b"0" * 400 + b"}", JSON,
     (400,)),
    ("json-nan", "/subscribe/alerts", b'{"email": NaN}', JSON, (400,)),
    ("json-invalid-utf8", "/subscribe/alerts", b'{"email": "\xff\xfe@example.org"}', JSON,
     (400,)),
    ("json-lone-surrogate", "/subscribe/alerts", b'{"email": "\\ud800@example.org"}', JSON,
     (400,)),
    ("json-latin1-charset", "/subscribe/alerts", '{"email": "é@example.org"}'.encode("latin-1"),
     {"content-type": "application/json; charset=latin-1"}, (400,)),
    ("json-overlong-email", "/subscribe/alerts",
     json.dumps({"email": "a" * 5000 + "@example.org"}).encode(), JSON, (400,)),
    ("json-email-with-crlf", "/subscribe/alerts",
     json.dumps({"email": "a@example.org\r\nBcc: b@example.org"}).encode(), JSON, (400,)),
    ("json-email-with-nul", "/subscribe/alerts",
     json.dumps({"email": "a\x00@example.org"}).encode(), JSON, (400,)),
    ("json-too-large", "/subscribe/alerts",
     json.dumps({"email": "a@example.org", "name": "x" * 20_000}).encode(), JSON, (413,)),
    ("json-too-large-chunked", "/subscribe/alerts", chunks(40_000), JSON, (413,)),
    ("form-too-large", "/subscribe/alerts", b"email=a%40example.org&name=" + b"x" * 20_000,
     FORM, (413,)),
    ("form-too-large-chunked", "/subscribe/alerts", chunks(40_000), FORM, (413,)),
    ("form-invalid-utf8", "/subscribe/alerts", b"email=%ff%fe%40example.org&name=\xff\xfe",
     FORM, (400, 403)),
    ("multipart-no-boundary", "/subscribe/alerts", b"garbage",
     {"content-type": "multipart/form-data"}, (400, 403)),
    ("multipart-garbage", "/subscribe/alerts", b"--x\r\nnot a part\r\n\r\n",
     {"content-type": "multipart/form-data; boundary=x"}, (400, 403)),
    ("text-plain", "/subscribe/alerts", b"email=a@example.org", {"content-type": "text/plain"},
     (400, 403)),
    ("no-content-type", "/subscribe/alerts", b"\x00\x01\x02", {}, (400, 403)),
    ("webhook-nested-100k", WEBHOOK, nested(50_000), JSON, (400,)),
    ("webhook-nested-5000", WEBHOOK, nested(5000), JSON, (400,)),
    ("webhook-nested-event", WEBHOOK, b"[" + deep_object(100) + b"]", JSON, (400,)),
    ("webhook-huge-number", WEBHOOK, b'[{"timestamp": 1' + b"0" * 400 + b"}]", JSON, (400,)),
    ("webhook-too-large", WEBHOOK, b"[" + b'"x",' * 40_000 + b'"x"]', JSON, (413,)),
    ("webhook-too-large-chunked", WEBHOOK, chunks(200_000), JSON, (413,)),
    ("webhook-not-array", WEBHOOK, b'{"event": "open"}', JSON, (400,)),
]


@pytest.mark.parametrize(("path", "body", "headers", "allowed"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_hostile_request_is_refused_cleanly(hostile: Hostile, path: str, body: Any,
                                            headers: dict[str, str],
                                            allowed: tuple[int, ...]) -> None:
    headers = dict(headers)
    if path == WEBHOOK and isinstance(body, bytes):
        headers.update({k: v for k, v in hostile.signer.headers(body).items()
                        if k != "content-type"})
    answer = hostile.client.post(path, content=body, headers=headers)
    assert answer.status_code in allowed, answer.text[:300]
    assert "Traceback" not in answer.text and "Error" not in answer.text.split("</title>")[-1]
    assert hostile.loud_records() == []
    assert hostile.service.status("a@example.org", "alerts") is None


def test_an_oversized_body_is_one_warning_line(hostile: Hostile) -> None:
    big = b"email=a%40example.org&name=" + b"x" * 20_000
    for _ in range(3):
        assert hostile.client.post("/subscribe/alerts", content=big,
                                   headers=FORM).status_code == 413
    chunked = hostile.client.post("/subscribe/alerts", content=chunks(40_000), headers=FORM)
    assert chunked.status_code == 413
    signed = b"[" + b'"x",' * 40_000 + b'"x"]'
    webhook = hostile.client.post(WEBHOOK, content=signed,
                                  headers=hostile.signer.headers(signed))
    assert webhook.status_code == 413
    assert hostile.loud_records() == []
    refused = [r for r in hostile.log.records if r.name == "newsletter.web"]
    assert len(refused) == 5
    assert all(r.levelno == logging.WARNING and "\n" not in r.getMessage() for r in refused)


# ---------------------------------------------------------------- sign-ups as a spam relay


def test_the_name_typed_in_never_reaches_the_confirmation_email(hostile: Hostile) -> None:
    spam = "Cheap pills!\r\nBcc: many@example.org\nhttps://spam.example/buy " + "x" * 120
    client = hostile.client
    answer = client.post("/subscribe/weekly", json={"email": "victim@example.org",
                                                     "name": spam})
    assert answer.status_code == 200
    form = client.post("/subscribe/weekly", data={
        "email": "victim2@example.org", "name": spam, "csrf_token": form_token(client)})
    assert form.status_code == 200
    messages = hostile.service.outbox(wait_for=2)
    assert sorted(m["To"] for m in messages) == ["victim2@example.org", "victim@example.org"]
    for message in messages:
        assert message["Bcc"] is None
        text = body_text(message)
        html = message.get_body(preferencelist=("html",)).get_content()
        for content in (text, html, str(message["Subject"])):
            assert "spam.example" not in content and "pills" not in content
        assert text.startswith("Hello,")
    with hostile.service.db.transaction() as session:  # the name is still stored
        assert find_subscriber(session, "victim@example.org").name.startswith("Cheap pills!")
    assert hostile.loud_records() == []


def test_a_single_opt_in_welcome_leaves_the_typed_name_out(hostile: Hostile) -> None:
    answer = hostile.client.post("/subscribe/alerts", json={
        "email": "s@example.org", "name": "Visit https://spam.example now"})
    assert answer.status_code == 200
    [welcome] = hostile.service.outbox(wait_for=1)
    assert "spam.example" not in welcome.as_string()


ALIASES: list[Callable[[int], str]] = [
    lambda i: f"victim+{i}@example.org",
    lambda i: f"Victim+{i}@Example.org",
    lambda i: "victim"[:i % 5 + 1] + "." + "victim"[i % 5 + 1:] + f"+{i}@gmail.com",
    lambda i: f"vic.tim+{i}@googlemail.com",
]


@pytest.mark.parametrize("alias", ALIASES, ids=["plus", "plus-case", "gmail-dots", "googlemail"])
def test_tag_aliases_share_one_inbox_rate_limit(sample_project: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               alias: Callable[[int], str]) -> None:
    limits = Limits(signups_per_ip=100, signups_per_address=2)
    for service in start_service(sample_project, monkeypatch, verifier=None, limits=limits):
        for i in range(10):
            answer = service.client.post("/subscribe/weekly", json={"email": alias(i)})
            assert answer.status_code == 200  # the same answer every time
        wait_idle(service.url)
        assert len(service.outbox()) == 2


# ---------------------------------------------------------------- `newsletter archive serve`


def test_archive_preview_never_follows_a_symlink_out_of_the_site(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "issues").mkdir(parents=True)
    (site / "index.html").write_text("<p>home</p>")
    (site / "issues" / "one.html").write_text("<p>issue one</p>")
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "passwd").write_text("root:SECRET-CONTENT")
    (site / "etc").symlink_to(outside, target_is_directory=True)
    (site / "passwd.html").symlink_to(outside / "passwd")
    (site / "same.html").symlink_to(site / "issues" / "one.html")  # inside: fine
    with serving(site) as url, httpx.Client(base_url=url, timeout=10) as client:
        for path in ("/etc/passwd", "/passwd.html", "/etc/", "/etc"):
            for method in ("GET", "HEAD"):
                answer = client.request(method, path)
                assert answer.status_code == 404, (method, path)
                assert "SECRET-CONTENT" not in answer.text and "passwd" not in answer.text
        assert "issue one" in client.get("/same.html").text
        assert "home" in client.get("/").text


# (form body, whether a@example.org may end up on the list)
FORM_BODIES = [
    (b"email=%ff%fe%40example.org&name=Ann", False),
    (b"email=%ff%fe\xff%40example.org&name=Ann", False),
    (b"email=a%40example.org&name=%ff%fe\xff", True),  # the name is just text
    (b"email=a%40example.org%0d%0aBcc:%20b%40example.org&name=x", False),
    (b"email=" + b"a" * 5000 + b"%40example.org", False),
    (b"email=a%00%40example.org", False),
    (b"email=&email=&email=&name=" + b"&x=" * 3000, False),
]


@pytest.mark.parametrize(("body", "joins"), FORM_BODIES, ids=[
    "invalid-utf8-email", "raw-invalid-utf8-email", "invalid-utf8-name", "crlf-email",
    "overlong-email", "nul-email", "many-fields"])
def test_hostile_form_with_a_valid_token_is_refused_cleanly(hostile: Hostile, body: bytes,
                                                            joins: bool) -> None:
    token = form_token(hostile.client, "alerts")
    answer = hostile.client.post("/subscribe/alerts",
                                 content=body + b"&csrf_token=" + token.encode(), headers=FORM)
    assert answer.status_code == (200 if joins else 400), answer.text[:300]
    assert "Traceback" not in answer.text
    assert hostile.loud_records() == []
    assert (hostile.service.status("a@example.org", "alerts") is not None) == joins
    with hostile.service.db.transaction() as session:  # nobody else got on the list either
        count = session.scalar(select(func.count()).select_from(Subscriber))
    assert count == (1 if joins else 0)


@pytest.mark.parametrize(("path", "body", "headers"), [
    ("/unsubscribe/not-a-token", b"--x\r\ngarbage", {"content-type": "multipart/form-data; "
                                                     "boundary=x"}),
    ("/unsubscribe/not-a-token", b"x" * 40_000, FORM),
    ("/unsubscribe/not-a-token", nested(5000), JSON),
    ("/confirm/not-a-token", b"x" * 40_000, FORM),
    ("/confirm/" + "A" * 5000, b"", FORM),
], ids=["unsubscribe-multipart", "unsubscribe-too-large", "unsubscribe-json",
        "confirm-too-large", "confirm-long-token"])
def test_hostile_posts_to_links_are_refused_cleanly(hostile: Hostile, path: str, body: bytes,
                                                    headers: dict[str, str]) -> None:
    answer = hostile.client.post(path, content=body, headers=headers)
    assert 400 <= answer.status_code < 500, answer.text[:300]
    assert "Traceback" not in answer.text
    assert hostile.loud_records() == []
