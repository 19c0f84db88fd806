"""One message per recipient: a Mail Send body turned into complete messages, and the
record a per-recipient transport (SMTP) keeps of each one.

The outbox and the SMTP transport both build their messages here, so an SMTP
message is byte for byte the outbox's .eml (apart from Date and Message-ID).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any, Protocol

from ..config import Config
from ..mime import build_message, message_id
from ..personalization import personalize
from .fastmime import MessageTemplate, NoTemplate, message_bytes

__all__ = ["DeliveryOutcome", "Journal", "message_bytes", "personal_message_bytes",
           "personal_messages"]


class Journal(Protocol):
    """Where a per-recipient transport writes each message's fate.

    ``index`` is the position of the recipient in the body's personalizations.
    The transport sends in chunks: :meth:`sending` makes a chunk's records durable
    before the first of its final dots leaves (one write for the chunk); the outcomes
    are told as they happen and written together, with the next chunk's
    :meth:`sending` or at :meth:`flush`. A sender killed in between leaves the
    chunk ``sending``: ambiguous, never sent again without ``--retry-ambiguous``.
    """

    def skip(self, index: int) -> bool:
        """True if this recipient's message must not be sent (accepted earlier, say)."""

    def sending(self, indices: Sequence[int]) -> None:
        """These messages' final dots may leave from now on (durable when this returns)."""

    def unsent(self, index: int) -> None:
        """The message did not leave after all (the dot was never sent, or a 4xx came)."""

    def accepted(self, index: int) -> None:
        """The server answered 250 to the final dot."""

    def ambiguous(self, index: int, detail: str) -> None:
        """The connection broke after the final dot, before the answer."""

    def bounced(self, index: int, detail: str) -> None:
        """The server refused the recipient for good (5xx to RCPT TO)."""

    def flush(self) -> None:
        """Write the outcomes told since the last write (durable when this returns)."""


@dataclass
class DeliveryOutcome:
    """What a per-recipient transport (SMTP) did with one body's messages.

    SendGrid and the outbox answer for the whole body and return None instead.
    """

    accepted: int = 0
    skipped: int = 0
    ambiguous: list[tuple[str, str]] = field(default_factory=list)  # (email, detail)
    bounced: list[tuple[str, str]] = field(default_factory=list)  # (email, server's text)


def personal_messages(
    config: Config, body: dict[str, Any], seed: str, now: dt.datetime
) -> Iterator[tuple[str, EmailMessage]]:
    """(recipient email, complete message) for each personalization of a Mail Send body,
    the substitutions applied exactly as SendGrid would. ``seed`` makes the Message-IDs."""
    for person in body["personalizations"]:
        yield person["to"][0]["email"], _personal_message(config, body, person, seed, now)


def personal_message_bytes(
    config: Config, body: dict[str, Any], seed: str, now: dt.datetime
) -> Iterator[tuple[str, bytes]]:
    """(recipient email, message bytes) for each personalization: the bytes
    ``message_bytes`` would write for :func:`personal_messages`, built from a
    :class:`.fastmime.MessageTemplate` where it can (about 50 times faster)."""
    try:
        template: MessageTemplate | None = MessageTemplate(config, body, seed, now)
    except NoTemplate:
        template = None
    for person in body["personalizations"]:
        email = person["to"][0]["email"]
        if template is not None:
            try:
                yield email, template.message(person)
                continue
            except NoTemplate:
                pass
        yield email, message_bytes(_personal_message(config, body, person, seed, now))


def _personal_message(config: Config, body: dict[str, Any], person: dict[str, Any],
                      seed: str, now: dt.datetime) -> EmailMessage:
    """One personalization's message, built with the email package."""
    contents = {part["type"]: part["value"] for part in body.get("content", [])}
    values = person.get("substitutions") or {}
    recipient = person["to"][0]
    return build_message(
        config,
        subject=personalize(person.get("subject") or body.get("subject", ""), values),
        text=personalize(contents.get("text/plain", ""), values),
        html=personalize(contents.get("text/html", ""), values),
        to=str(Address(display_name=recipient.get("name", ""),
                       addr_spec=recipient["email"])),
        date=now,
        msg_id=message_id(config, seed, recipient["email"], now.isoformat()),
        headers={**(body.get("headers") or {}), **(person.get("headers") or {})},
    )
