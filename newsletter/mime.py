"""Complete email messages (.eml): multipart/alternative with a text and an HTML part."""

from __future__ import annotations

import datetime as dt
import hashlib
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from .config import Config


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
        message[name] = value
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    # The default boundary is random; derive it from the Message-ID so builds are reproducible.
    message.set_boundary("=_" + hashlib.sha256(msg_id.encode()).hexdigest()[:32])
    return message
