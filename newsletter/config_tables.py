"""The tables of newsletter.toml as pydantic models: each setting's kind, default and rule.

A rule that fails raises ValueError with the reason (or ""), and each setting's
``description`` says in plain words what to write instead: config.py puts the two
together, with the file and line, when the file is read.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from .emails import InvalidEmail, normalise_email

SENDGRID_MAX_BATCH = 1000  # personalizations in one SendGrid mail/send request
EMAIL_WIDTH = 600  # pixels; the logo sits inside 28 px of padding on each side
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


# --- the rules, one per kind of value ----------------------------------------------------


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("")
    return value


def _email(value: str) -> str:
    if value:
        try:
            normalise_email(value)
        except InvalidEmail as exc:
            raise ValueError(str(exc).rstrip(".")) from None
    return value


def _web_address(value: str) -> str:
    if value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
            raise ValueError("")
    return value


def _image_address(value: str) -> str:
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme == "http":
        raise ValueError("email programs block images sent over http://; use the https:// address")
    if parts.scheme != "https" or not parts.netloc or " " in value:
        raise ValueError(
            "that looks like a file on a computer; put the logo on the web and write its "
            "https:// address"
        )
    return value


def _greeting(value: str) -> str:
    if not value.strip():
        raise ValueError("")
    if len(value) > 40 or "[[" in value or "\n" in value:
        raise ValueError("keep it to a few words on one line")
    return " ".join(value.split())


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError("") from None
    return value


def _colour(value: str) -> str:
    if not _COLOUR.match(value):
        raise ValueError("")
    return value


def _language(value: str) -> str:
    if not _LANGUAGE.match(value):
        raise ValueError("")
    return value


Text = Annotated[str, AfterValidator(_text)]
Email = Annotated[str, AfterValidator(_email)]
WebAddress = Annotated[str, AfterValidator(_web_address)]
Colour = Annotated[str, AfterValidator(_colour)]

_SAY_COLOUR = "write a colour code: # and six digits or letters a-f, like #1d4e89"
_SAY_EMAIL = "write an email address, like brief@example.org"


class Table(BaseModel):
    """One table of newsletter.toml: unknown settings and wrong kinds of value are errors."""

    # strict: "200" (text) is not a number and 1 is not text; the person must fix the file.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Brand(Table):
    """Look of the email and the archive."""

    logo_url: Annotated[str, AfterValidator(_image_address)] = Field(
        default="",
        description="write the logo's web address, like https://news.example.org/logo.png",
    )
    logo_alt: str = Field(
        default="", description="write a few words describing the logo, in quotes"
    )
    logo_width: int = Field(
        default=160,
        ge=1,
        le=EMAIL_WIDTH - 56,
        description=f"write a number of pixels from 1 to {EMAIL_WIDTH - 56}, like 200",
    )
    primary_color: Colour = Field(default="#1d4e89", description=_SAY_COLOUR)
    accent_color: Colour = Field(default="#b3541e", description=_SAY_COLOUR)
    background_color: Colour = Field(default="#f4f1ea", description=_SAY_COLOUR)
    text_color: Colour = Field(default="#1f2328", description=_SAY_COLOUR)
    logo_dark_url: Annotated[str, AfterValidator(_image_address)] = Field(
        default="",
        description="write the web address of a logo drawn for dark backgrounds, like "
        "https://news.example.org/logo-dark.png",
    )


class Sender(Table):
    """Who the email comes from."""

    from_email: Annotated[Email, AfterValidator(_text)] = Field(description=_SAY_EMAIL)
    from_name: str = Field(default="", description="write the name shown as sender, in quotes")
    reply_to: Email = Field(default="", description=_SAY_EMAIL)
    unsubscribe_email: Email = Field(default="", description=_SAY_EMAIL)
    dkim_selector: Text = Field(
        default="",
        description='write the DKIM selector your email provider gave you, like "s1" '
        '(several: "s1, s2"); leave it out for SendGrid\'s s1 and s2',
    )


class Delivery(Table):
    """How messages leave: the transport and its settings."""

    transport: Literal["outbox", "sendgrid", "smtp"] = Field(
        default="outbox", description='write "outbox", "sendgrid" or "smtp"'
    )
    outbox_dir: Text = Field(default="outbox", description='write a folder name, like "outbox"')
    default_list: str = Field(
        default="", description='write the short name of a list, like "weekly"'
    )
    sendgrid_unsubscribe_group: int = Field(
        default=0, ge=0, description="write the number of a SendGrid unsubscribe group, like 12345"
    )
    batch_size: int = Field(
        default=SENDGRID_MAX_BATCH,
        ge=1,
        le=SENDGRID_MAX_BATCH,
        description=f"write a number from 1 to {SENDGRID_MAX_BATCH} (SendGrid takes at most "
        f"{SENDGRID_MAX_BATCH} recipients per request), like {SENDGRID_MAX_BATCH}",
    )
    concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        description="write how many requests may run at once, from 1 to 64, like 4",
    )
    timeout: float = Field(
        default=30.0, gt=0, le=600, description="write a number of seconds from 1 to 600, like 30"
    )
    max_retries: int = Field(
        default=5,
        ge=0,
        le=20,
        description="write how many times to try again, from 0 to 20, like 5",
    )


def _origins(values: list[str]) -> list[str]:
    """Web origins (scheme://host[:port], no path), lower-cased and without a final slash."""
    cleaned = []
    for value in values:
        parts = urlsplit(value.strip())
        if (parts.scheme not in ("http", "https") or not parts.netloc or " " in value
                or parts.path.rstrip("/") or parts.query or parts.fragment):
            raise ValueError(
                f"{value!r} is not a website's address: write only https:// and the host, "
                'like "https://www.example.org", without a path'
            )
        cleaned.append(f"{parts.scheme}://{parts.netloc}".lower())
    return cleaned


_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class Smtp(Table):
    """The [smtp] table: an SMTP server for ``transport = "smtp"``.

    The password is never in the file: it comes from NEWSLETTER_SMTP_PASSWORD.
    """

    host: str = Field(default="", description='write the server\'s name, like "smtp.example.org"')
    port: int = Field(default=587, ge=1, le=65535,
                      description="write a port number: 587 for starttls, 465 for tls")
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description='write "starttls" (port 587), "tls" (port 465), or "none" (only for a '
        "server on this computer, 127.0.0.1)",
    )
    username: str = Field(default="", description='write the login name in quotes, like '
                          '"news@example.org" (the password goes in NEWSLETTER_SMTP_PASSWORD)')
    connections: int = Field(default=4, ge=1, le=32,
                             description="write how many connections at once, from 1 to 32, "
                             "like 4")
    messages_per_connection: int = Field(
        default=100, ge=1, le=100_000,
        description="write how many messages to send before reconnecting, like 100")
    per_second: float = Field(default=0.0, ge=0, le=10_000,
                              description="write the most messages per second the service "
                              "allows, like 10 (0: no limit)")
    per_day: int = Field(default=0, ge=0,
                         description="write the most messages per day the service allows, "
                         "like 10000 (0: no limit)")
    ca_file: str = Field(default="", description="write the path of a file of trusted "
                         "certificates (PEM), or leave it out to use the system's")
    timeout: float = Field(default=60.0, gt=0, le=600,
                           description="write a number of seconds from 1 to 600, like 60")

    @field_validator("security")
    @classmethod
    def _plain_only_here(cls, value: str, info: ValidationInfo) -> str:
        host = info.data.get("host", "")
        if value == "none" and host not in _LOCAL_HOSTS:
            raise ValueError(f"a password and every message would cross the network "
                             f"unencrypted to {host or 'the server'}; use starttls or tls")
        return value


class Settings(Table):
    """The [newsletter] table."""

    name: Text = Field(description='write the newsletter\'s name in quotes, like "Weekly Brief"')
    postal_address: Text = Field(
        description="write the organisation's postal address in quotes; bulk-mail law "
        "requires it in every message"
    )
    archive_url: Annotated[WebAddress, AfterValidator(_text)] = Field(
        description="write the archive's web address, like https://news.example.org/"
    )
    web_url: WebAddress = Field(
        default="", description="write the web service's address, like https://news.example.org"
    )
    description: str = Field(default="", description="write one sentence in quotes")
    language: Annotated[str, AfterValidator(_language)] = Field(
        default="en", description='write a language code, like "en" or "de"'
    )
    timezone: Annotated[str, AfterValidator(_zone)] = Field(
        default="UTC", description='write a time zone name, like "Europe/Berlin" or "UTC"'
    )
    privacy: Literal["full", "aggregate"] = Field(
        default="full",
        description='write "full" (who opened and clicked, per reader) or "aggregate" '
        "(counts only, no per-reader rows)",
    )
    greeting: Annotated[str, AfterValidator(_greeting)] = Field(
        default="Hello",
        description='write the word the email greets readers with, in quotes, like "Hello" '
        'or "Hallo"',
    )


class Database(Table):
    """The [database] table."""

    url: str = Field(
        default="", description="write a database address, like sqlite:///subscribers.db"
    )


def _networks(values: list[str]) -> list[str]:
    for value in values:
        try:
            ipaddress.ip_network(value.strip(), strict=False)
        except ValueError:
            raise ValueError(f'"{value}" is not an address or network') from None
    return [value.strip() for value in values]


class Web(Table):
    """The [web] table: settings of `newsletter serve`."""

    allowed_origins: Annotated[list[str], AfterValidator(_origins)] = Field(
        default=[],
        description='write a list of websites in quotes, like ["https://www.example.org"]',
    )
    trusted_proxies: Annotated[list[str], AfterValidator(_networks)] = Field(
        default_factory=list,
        description='write the addresses of your reverse proxies in quotes, in brackets, '
        'like ["127.0.0.1"] or ["10.0.0.0/8"]',
    )


class Studio(Table):
    """The [studio] table: the studio hosted for a team (see docs/studio.md)."""

    hosted: bool = Field(
        default=False,
        description="write true to serve the studio under /studio in `newsletter serve` "
        "(login required), or false",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description='write the host names the studio answers to, in a list, like '
        '["news.example.org"] (the host of web_url is always allowed)',
    )
    session_hours: int = Field(
        default=12, ge=1, le=24 * 30,
        description="write how many hours a login lasts, from 1 to 720, like 12",
    )
    review_days: int = Field(
        default=7, ge=1, le=90,
        description="write how many days a review link works, from 1 to 90, like 7",
    )
    git_commit: bool = Field(
        default=False,
        description="write true to make each Save in the studio a git commit of the issue "
        "file (when the project folder is a git repository), or false",
    )
