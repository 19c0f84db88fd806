"""Transports: where a Mail Send request goes — SendGrid's API, or .eml files in the outbox.

Both take the same thing: one SendGrid v3 Mail Send body (a dict), with up to
1000 personalizations. The outbox writes one personalised .eml per
personalization, applying the substitutions locally as SendGrid would, so the
outbox shows exactly what SendGrid would deliver.
"""

from __future__ import annotations

import datetime as dt
import http.client
import os
import re
import threading
import urllib.error
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.policy import SMTP
from pathlib import Path
from typing import Any, Protocol

from ..errors import NewsletterError
from ..mime import build_message, message_id
from ..project import Project
from ..render import personalize
from . import _json

TRANSPORTS = ("outbox", "sendgrid")
API_KEY_ENV = "SENDGRID_API_KEY"
API_HOST_ENV = "SENDGRID_API_HOST"
DEFAULT_API_HOST = "https://api.sendgrid.com"
# Not plain "application/json": python_http_client then sends our pre-encoded body as is
# instead of json.dumps-ing it again (which would be slow, and wrong for a str).
JSON_CONTENT_TYPE = "application/json; charset=utf-8"


# --- what can go wrong with one request --------------------------------------------------


class DeliveryProblem(Exception):
    """One request did not end in acceptance. Subclasses say what to do next."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Retryable(DeliveryProblem):
    """5xx or a connection error: the API did not take the request; try again later."""


class RateLimited(DeliveryProblem):
    """429: wait until ``reset_at`` (epoch seconds, None if the API did not say)."""

    def __init__(self, message: str, reset_at: float | None) -> None:
        super().__init__(message, 429)
        self.reset_at = reset_at


class Rejected(DeliveryProblem):
    """400 (or another 4xx): this request is wrong; ``errors`` are SendGrid's explanations."""

    def __init__(self, message: str, status: int, errors: list[dict[str, Any]]) -> None:
        super().__init__(message, status)
        self.errors = errors


class AuthProblem(DeliveryProblem):
    """401/403: nothing will get through until the key, its permissions or the sender is fixed."""


class Ambiguous(DeliveryProblem):
    """The request may have reached SendGrid (it timed out waiting for the answer)."""


# --- the protocol ------------------------------------------------------------------------


class Transport(Protocol):
    """Something that delivers Mail Send bodies. Thread-safe: the sender calls it from workers."""

    name: str

    def send(self, body: dict[str, Any] | None, payload: bytes | None = None) -> None:
        """Deliver one Mail Send body, given as a dict, as its JSON ``payload``, or both;
        raise a :class:`DeliveryProblem` unless it was accepted."""

    def create_batch_id(self) -> str:
        """A SendGrid batch id for a scheduled send (POST /v3/mail/batch)."""

    def cancel_scheduled(self, batch_id: str) -> None:
        """Cancel a scheduled send by its batch id (POST /v3/user/scheduled_sends)."""

    def close(self) -> None:
        """Release resources."""


# --- outbox ------------------------------------------------------------------------------


_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]+")
# Long List-Unsubscribe URLs must stay plain text: with the default 78-character
# limit, the email package would wrap them in =?utf-8?q?...?= encoded words.
_EML_POLICY = SMTP.clone(max_line_length=998)


def safe_filename(email: str) -> str:
    """An address turned into a file name that is safe on every system."""
    return _UNSAFE.sub("_", email).strip("._") or "recipient"


@dataclass
class OutboxTransport:
    """Writes each personalised message as an .eml file into ``folder``.

    Files are named after the address (a resumed send overwrites, never doubles);
    with ``timestamped`` the name starts with the time, so one-off messages to the
    same person (confirm, then welcome) are all kept.
    """

    project: Project
    folder: Path
    timestamped: bool = False
    name: str = "outbox"
    written: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send(self, body: dict[str, Any] | None, payload: bytes | None = None) -> None:
        if body is None:
            body = _json.loads(payload or b"{}")
        config = self.project.config
        self.folder.mkdir(parents=True, exist_ok=True)
        contents = {part["type"]: part["value"] for part in body.get("content", [])}
        html, text = contents.get("text/html", ""), contents.get("text/plain", "")
        now = dt.datetime.now(dt.UTC)
        common_headers = dict(body.get("headers") or {})
        for person in body["personalizations"]:
            values = person.get("substitutions") or {}
            subject = personalize(person.get("subject") or body.get("subject", ""), values)
            recipient = person["to"][0]
            to = str(Address(display_name=recipient.get("name", ""),
                             addr_spec=recipient["email"]))
            headers = {**common_headers, **(person.get("headers") or {})}
            message = build_message(
                config,
                subject=subject,
                text=personalize(text, values),
                html=personalize(html, values),
                to=to,
                date=now,
                msg_id=message_id(config, self.folder.name, recipient["email"], now.isoformat()),
                headers=headers,
            )
            stem = safe_filename(recipient["email"])
            if self.timestamped:
                stem = f"{now:%Y%m%dT%H%M%S%f}-{stem}"
            target = self.folder / f"{stem}.eml"
            temporary = target.with_name(f".{target.name}.{threading.get_ident()}.tmp")
            temporary.write_bytes(message.as_bytes(policy=_EML_POLICY))
            temporary.replace(target)
            with self._lock:
                self.written += 1

    def create_batch_id(self) -> str:
        raise NewsletterError(
            "Scheduling (--at) needs the sendgrid transport; the outbox writes files at once.",
            hint="Add --transport sendgrid (with SENDGRID_API_KEY set), or leave out --at.",
        )

    def cancel_scheduled(self, batch_id: str) -> None:
        self.create_batch_id()

    def close(self) -> None:
        pass


# --- SendGrid ----------------------------------------------------------------------------


def api_key_from_env(
    needed_by: str = "The sendgrid transport",
    permission: str = "Mail Send",
    alternative: str = "; or use --transport outbox to write .eml files instead",
) -> str:
    """SENDGRID_API_KEY, or a clear error (the key itself is never shown)."""
    key = os.environ.get(API_KEY_ENV, "").strip()
    if not key:
        raise NewsletterError(
            f"{needed_by} needs an API key in {API_KEY_ENV}, and it is not set.",
            hint=f"Create a key with the '{permission}' permission in SendGrid (Settings → "
            f"API Keys), then `export {API_KEY_ENV}=...`{alternative}.",
        )
    return key


def _errors_of(body: bytes | None) -> list[dict[str, Any]]:
    try:
        data = _json.loads(body or b"")
    except ValueError:
        return []
    errors = data.get("errors") if isinstance(data, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def describe_errors(errors: list[dict[str, Any]]) -> str:
    """SendGrid's error list as readable lines: 'field: message (help)'."""
    lines = []
    for error in errors:
        where = f"{error['field']}: " if error.get("field") else ""
        help_text = f" (see {error['help']})" if error.get("help") else ""
        lines.append(f"{where}{error.get('message', 'no message')}{help_text}")
    return "; ".join(lines) or "no details given"


def _auth_message(status: int, errors: list[dict[str, Any]]) -> str:
    said = describe_errors(errors)
    if status == 401:
        return (
            f"SendGrid refused the API key (401: {said}). Check that {API_KEY_ENV} holds a "
            "current, complete key."
        )
    return (
        f"SendGrid refused the request (403: {said}). The key needs the 'Mail Send' "
        "permission (and 'Scheduled sends' for --at and cancel), and the From address must "
        "be a verified sender or on an authenticated domain."
    )


class SendGridTransport:
    """Posts to SendGrid's v3 API with the sendgrid package: one client per thread.

    python_http_client keeps request headers in one mutable dict shared by every
    client built from a SendGridAPIClient, so threads never share a client.
    """

    name = "sendgrid"

    def __init__(self, api_key: str, host: str | None = None, timeout: float = 30.0) -> None:
        self._key = api_key
        self.host = (host or os.environ.get(API_HOST_ENV) or DEFAULT_API_HOST).rstrip("/")
        self.timeout = timeout if timeout and timeout > 0 else 30.0
        self._local = threading.local()

    def __repr__(self) -> str:  # never show the key
        return f"SendGridTransport(host={self.host!r}, timeout={self.timeout})"

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            from sendgrid import SendGridAPIClient

            client = SendGridAPIClient(self._key, host=self.host)
            client.client.timeout = self.timeout
            client.client.request_headers["Content-Type"] = JSON_CONTENT_TYPE
            self._local.client = client
        return client.client

    def _call(self, endpoint: Any, payload: bytes) -> Any:
        from python_http_client.exceptions import HTTPError

        try:
            return endpoint.post(request_body=_JsonBody(payload), timeout=self.timeout)
        except HTTPError as exc:
            raise _classify(exc) from None
        except TimeoutError:
            raise Ambiguous(
                f"no answer from {self.host} within {self.timeout:g} s; the request may have "
                "been accepted"
            ) from None
        except urllib.error.URLError as exc:
            # urllib wraps errors raised while connecting or sending: the request never
            # arrived whole, so sending it again cannot deliver it twice.
            raise Retryable(f"cannot reach {self.host}: {exc.reason}") from None
        except (http.client.HTTPException, ConnectionError, OSError) as exc:
            # The request went out whole and the connection broke while waiting for the
            # answer: SendGrid may have accepted it, exactly as after a timeout.
            raise Ambiguous(
                f"the connection to {self.host} broke before SendGrid answered "
                f"({type(exc).__name__}); the request may have been accepted"
            ) from None

    def send(self, body: dict[str, Any] | None, payload: bytes | None = None) -> None:
        if payload is None:
            payload = _json.dumps(body)
        self._call(self._client().mail.send, payload)

    def create_batch_id(self) -> str:
        response = self._call(self._client().mail.batch, b"")
        try:
            return str(_json.loads(response.body)["batch_id"])
        except (ValueError, KeyError, TypeError):
            raise NewsletterError(
                f"SendGrid answered POST /v3/mail/batch without a batch_id "
                f"(status {response.status_code}).",
                hint="Try again in a minute; if it persists, schedule without --at.",
            ) from None

    def cancel_scheduled(self, batch_id: str) -> None:
        payload = _json.dumps({"batch_id": batch_id, "status": "cancel"})
        self._call(self._client().user.scheduled_sends, payload)

    def close(self) -> None:
        self._local = threading.local()


class _Payload(bytes):
    """Request bytes that print as a short note instead of their content.

    python_http_client formats every request body into a debug-log string before
    the logger decides to drop it. For a 1000-recipient body that costs
    milliseconds per request, and if debug logging were on it would write
    every recipient's address into the log.
    """

    def __str__(self) -> str:
        return f"<{len(self)} bytes of JSON>"

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return str(self)


class _JsonBody(str):
    """An already-encoded JSON body for python_http_client.

    With a Content-Type other than exactly "application/json", the client sends
    ``request_body.encode("utf-8")`` as is; this hands over our bytes without
    decoding and re-encoding them.
    """

    payload: _Payload

    def __new__(cls, payload: bytes) -> _JsonBody:
        self = super().__new__(cls, "")
        self.payload = _Payload(payload)
        return self

    def __bool__(self) -> bool:
        return True

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self.payload


def _reset_at(headers: Any) -> float | None:
    try:
        value = headers.get("X-RateLimit-Reset") if headers is not None else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _classify(exc: Any) -> DeliveryProblem:
    status = int(getattr(exc, "status_code", 0) or 0)
    errors = _errors_of(getattr(exc, "body", b""))
    if status in (401, 403):
        return AuthProblem(_auth_message(status, errors), status)
    if status == 429:
        return RateLimited("SendGrid's rate limit was reached (429)", _reset_at(exc.headers))
    if status >= 500:
        return Retryable(f"SendGrid had a server error ({status})", status)
    return Rejected(f"SendGrid rejected the request ({status}): {describe_errors(errors)}",
                    status, errors)


# --- choosing one ------------------------------------------------------------------------


def transport_name(project: Project, override: str | None = None) -> str:
    """The transport to use: ``override`` (--transport), else [delivery] transport."""
    name = override or project.config.delivery.transport
    if name not in TRANSPORTS:
        raise NewsletterError(
            f"Unknown transport {name!r}; expected 'outbox' or 'sendgrid'.",
            hint="Use --transport outbox or --transport sendgrid.",
        )
    return name


def open_transport(
    project: Project,
    name: str | None = None,
    *,
    folder: str = "transactional",
    timeout: float | None = None,
) -> Transport:
    """The transport ``name`` (default: newsletter.toml's) for ``project``.

    ``folder`` is the outbox sub-folder the messages go to. The sendgrid
    transport needs SENDGRID_API_KEY: without it this raises NewsletterError.
    """
    chosen = transport_name(project, name)
    if chosen == "outbox":
        return OutboxTransport(
            project, project.outbox_dir / folder, timestamped=folder == "transactional"
        )
    return SendGridTransport(
        api_key_from_env(), timeout=timeout or project.config.delivery.timeout
    )
