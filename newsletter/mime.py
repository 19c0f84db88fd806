"""Complete email messages (.eml): multipart/alternative with a text and an HTML part."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, Policy
from email.utils import format_datetime

from .config import Config

FOLD_WIDTH = 78  # RFC 5322 2.1.1: lines SHOULD be at most 78 characters
# The <...> entries of a List-Unsubscribe (RFC 2369) value, split at the commas between them.
_ENTRY_SEPARATOR = re.compile(r"(?<=>)\s*,\s*(?=<)")
FOLDED_HEADERS = ("List-Unsubscribe",)


class FoldedHeader(str):
    """A header value written folded between its <...> entries (RFC 5322 folding).

    The email package would otherwise keep a long List-Unsubscribe on one line (or, at
    78 characters, turn it into =?utf-8?q?...?= encoded words, which break the URLs).
    URLs themselves are never split: RFC 2369 asks senders not to put spaces in them.
    """

    name: str

    def __new__(cls, name: str, value: str) -> FoldedHeader:
        made = super().__new__(cls, value)
        made.name = name
        return made

    def fold(self, *, policy: Policy) -> str:
        """The header as written in the message, with its line ending."""
        lines = [f"{self.name}: "]
        for index, entry in enumerate(_ENTRY_SEPARATOR.split(str(self).strip())):
            if index == 0:
                lines[0] += entry
            elif len(lines[-1]) + len(entry) + 2 <= FOLD_WIDTH:
                lines[-1] += ", " + entry
            else:
                lines[-1] += ","
                lines.append(" " + entry)
        return policy.linesep.join(lines) + policy.linesep


def sender_address(config: Config) -> Address:
    """The From address, with the display name from newsletter.toml."""
    local, _, domain = config.sender.from_email.partition("@")
    return Address(display_name=config.sender.from_name or config.name, username=local,
                   domain=domain)


def message_id(config: Config, *parts: str) -> str:
    """A Message-ID that is the same for the same parts (so builds are reproducible)."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]
    domain = config.sender.from_email.partition("@")[2] or "localhost"
    return f"<{digest}@{domain}>"


def build_message(
    config: Config,
    *,
    subject: str,
    text: str,
    html: str,
    to: str | None = None,
    date: dt.datetime,
    msg_id: str,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    """A multipart/alternative message any mail client opens."""
    message = EmailMessage(policy=SMTP)
    message["From"] = sender_address(config)
    if to:
        message["To"] = to
    if config.sender.reply_to:
        message["Reply-To"] = config.sender.reply_to
    message["Subject"] = subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = msg_id
    message["MIME-Version"] = "1.0"
    for name, value in (headers or {}).items():
        message[name] = FoldedHeader(name, value) if name in FOLDED_HEADERS else value
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    # The default boundary is random; derive it from the Message-ID so builds are reproducible.
    message.set_boundary("=_" + hashlib.sha256(msg_id.encode()).hexdigest()[:32])
    return message
