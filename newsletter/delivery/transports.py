"""Transports: where a Mail Send request goes — SendGrid's API, or .eml files in the outbox.

Both take the same thing: one SendGrid v3 Mail Send body (a dict), with up to
1000 personalizations. The outbox writes one personalised .eml per
personalization, applying the substitutions locally as SendGrid would, so the
outbox shows exactly what SendGrid would deliver.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import NewsletterError
from ..files import atomic_write
from ..project import Project
from . import _json
from .personal import DeliveryOutcome, Journal, message_bytes, personal_messages
from .problems import (
    Ambiguous,
    AuthProblem,
    DeliveryProblem,
    RateLimited,
    Rejected,
    Retryable,
    describe_errors,
)
from .sendgrid_client import (
    API_HOST_ENV,
    API_KEY_ENV,
    DEFAULT_API_HOST,
    SendGridClient,
    api_key_from_env,
)
from .smtp import SmtpTransport, password_from_env

TRANSPORTS = ("outbox", "sendgrid", "smtp")
# Re-exported: callers import the problems and the key helper from here.
__all__ = [
    "API_HOST_ENV", "API_KEY_ENV", "DEFAULT_API_HOST", "TRANSPORTS", "Ambiguous",
    "AuthProblem", "DeliveryOutcome", "DeliveryProblem", "Journal", "OutboxTransport",
    "RateLimited", "Rejected",
    "Retryable", "SendGridTransport", "Transport", "api_key_from_env", "describe_errors",
    "message_bytes", "open_transport", "personal_messages", "safe_filename",
    "transport_name",
]


# --- the protocol ------------------------------------------------------------------------


class Transport(Protocol):
    """Something that delivers Mail Send bodies. Thread-safe: the sender calls it from workers.

    A transport whose ``per_recipient`` attribute is True (SMTP) takes a
    :class:`Journal` and returns a :class:`DeliveryOutcome`; the others ignore
    the journal and return None.
    """

    name: str

    def send(self, body: dict[str, Any] | None, payload: bytes | None = None,
             journal: Journal | None = None) -> DeliveryOutcome | None:
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

    def send(self, body: dict[str, Any] | None, payload: bytes | None = None,
             journal: Journal | None = None) -> None:
        if body is None:
            body = _json.loads(payload or b"{}")
        self.folder.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        for email, message in personal_messages(self.project.config, body, self.folder.name,
                                                now):
            stem = safe_filename(email)
            if self.timestamped:
                stem = f"{now:%Y%m%dT%H%M%S%f}-{stem}"
            target = self.folder / f"{stem}.eml"
            atomic_write(target, message_bytes(message), durable=False)
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


class SendGridTransport:
    """Posts Mail Send bodies to SendGrid through :class:`SendGridClient`."""

    name = "sendgrid"

    def __init__(self, api_key: str, host: str | None = None, timeout: float = 30.0) -> None:
        self.client = SendGridClient(api_key, host=host, timeout=timeout)
        self.host, self.timeout = self.client.host, self.client.timeout

    def __repr__(self) -> str:  # never show the key
        return f"SendGridTransport(host={self.host!r}, timeout={self.timeout:g})"

    def send(self, body: dict[str, Any] | None, payload: bytes | None = None,
             journal: Journal | None = None) -> None:
        if body is None:
            # Only the JSON was given (a caller that built it elsewhere).
            body = _json.loads(payload or b"{}")
        self.client.mail_send(body)

    def create_batch_id(self) -> str:
        return self.client.create_batch_id()

    def cancel_scheduled(self, batch_id: str) -> None:
        self.client.cancel_scheduled(batch_id)

    def close(self) -> None:
        self.client.close()


# --- choosing one ------------------------------------------------------------------------


def transport_name(project: Project, override: str | None = None) -> str:
    """The transport to use: ``override`` (--transport), else [delivery] transport."""
    name = override or project.config.delivery.transport
    if name not in TRANSPORTS:
        raise NewsletterError(
            f"Unknown transport {name!r}; expected 'outbox', 'sendgrid' or 'smtp'.",
            hint="Use --transport outbox, --transport sendgrid or --transport smtp.",
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

    ``folder`` is the outbox sub-folder the messages go to (for SMTP: what the
    Message-IDs are made from). The sendgrid transport needs SENDGRID_API_KEY,
    the smtp transport an [smtp] host: without them this raises NewsletterError.
    """
    chosen = transport_name(project, name)
    if chosen == "smtp":
        return SmtpTransport(project.config, password_from_env(project.config.smtp),
                             seed=folder, root=project.root)
    if chosen == "outbox":
        return OutboxTransport(
            project, project.outbox_dir / folder, timestamped=folder == "transactional"
        )
    return SendGridTransport(
        api_key_from_env(), timeout=timeout or project.config.delivery.timeout
    )
