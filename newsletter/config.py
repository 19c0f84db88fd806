"""newsletter.toml: one newsletter's settings, read and checked."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError

CONFIG_NAME = "newsletter.toml"
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Brand:
    """Look of the email and the archive."""

    logo_url: str = ""
    logo_alt: str = ""
    logo_width: int = 160
    primary_color: str = "#1d4e89"
    accent_color: str = "#b3541e"
    background_color: str = "#f4f1ea"
    text_color: str = "#1f2328"


@dataclass(frozen=True)
class Sender:
    """Who the email comes from."""

    from_email: str
    from_name: str = ""
    reply_to: str = ""
    unsubscribe_email: str = ""


@dataclass(frozen=True)
class Delivery:
    """How messages leave: the transport and its settings."""

    transport: str = "outbox"
    outbox_dir: str = "outbox"
    default_list: str = ""
    sendgrid_unsubscribe_group: int = 0
    batch_size: int = 1000
    concurrency: int = 4
    timeout: float = 30.0
    max_retries: int = 5


@dataclass(frozen=True)
class Config:
    """All of newsletter.toml."""

    name: str
    postal_address: str
    archive_url: str
    sender: Sender
    web_url: str = ""
    description: str = ""
    language: str = "en"
    timezone: str = "UTC"
    brand: Brand = field(default_factory=Brand)
    delivery: Delivery = field(default_factory=Delivery)
    database_url: str = ""

    @property
    def service_url(self) -> str:
        """Base URL of the web service (sign-up, unsubscribe), without a trailing slash."""
        return (self.web_url or self.archive_url).rstrip("/")

    @property
    def archive_base(self) -> str:
        """The archive's base URL, with exactly one trailing slash."""
        return self.archive_url.rstrip("/") + "/"

    def issue_url(self, name: str) -> str:
        """Public web address of one issue in the archive."""
        return f"{self.archive_base}issues/{name}/"


def _key_line(text: str, table: str | None, key: str) -> int:
    """Best-effort line number of ``key`` inside ``[table]`` (0 if not found)."""
    current: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped.strip("[] ")
            if table is not None and current == table and key == "":
                return number
            continue
        if current == table and re.match(rf"^{re.escape(key)}\s*=", stripped):
            return number
    return 0


_SECTIONS: dict[str, type] = {"sender": Sender, "brand": Brand, "delivery": Delivery}


def parse_config(text: str, path: Path) -> Config:
    """Parse and check the text of a newsletter.toml, raising ConfigError with the line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid TOML: {exc}",
            hint=f"Fix the syntax in {path}; docs/configuration.md shows a complete example.",
        ) from None

    problems: list[str] = []

    def where(table: str | None, key: str) -> str:
        line = _key_line(text, table, key)
        return f"{path}:{line}" if line else str(path)

    top = data.get("newsletter")
    if not isinstance(top, dict):
        raise ConfigError(
            f"{path}: the [newsletter] table is missing; it holds name, postal_address and "
            "archive_url.",
            hint="See docs/configuration.md, or run `newsletter init DIR` for a fresh example.",
        )
    for key in data:
        if key not in ("newsletter", "database", *_SECTIONS):
            problems.append(
                f"{where(key, '')}: unknown table [{key}]; expected one of [newsletter], "
                "[sender], [brand], [delivery], [database]"
            )

    def build(cls: type, table: str, raw: dict[str, Any]) -> Any:
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in known:
                problems.append(
                    f"{where(table, key)}: [{table}] {key}: unknown setting; expected one of "
                    + ", ".join(sorted(k for k in known if k not in _SECTIONS))
                )
                continue
            expected = known[key].type
            ok = {
                "str": isinstance(value, str),
                "int": isinstance(value, int) and not isinstance(value, bool),
                "float": isinstance(value, int | float) and not isinstance(value, bool),
            }.get(str(expected), True)
            if not ok:
                problems.append(
                    f"{where(table, key)}: [{table}] {key}: expected {expected}, "
                    f"got {type(value).__name__}"
                )
                continue
            values[key] = value
        return values

    newsletter_values = build(Config, "newsletter", {
        k: v for k, v in top.items() if k not in _SECTIONS and k != "database_url"
    })
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        raw = data.get(name, {})
        sections[name] = build(cls, name, raw) if isinstance(raw, dict) else {}
    database = data.get("database", {})
    database_url = database.get("url", "") if isinstance(database, dict) else ""

    for key in ("name", "postal_address", "archive_url"):
        if not str(newsletter_values.get(key, "")).strip():
            problems.append(
                f"{where('newsletter', key) if _key_line(text, 'newsletter', key) else path}: "
                f"[newsletter] {key}: required"
                + (
                    "; bulk-mail law requires the sender's postal address in every message"
                    if key == "postal_address"
                    else ""
                )
            )
    url = str(newsletter_values.get("archive_url", ""))
    if url and not url.startswith(("https://", "http://")):
        problems.append(
            f"{where('newsletter', 'archive_url')}: [newsletter] archive_url: expected an "
            f"http(s) URL, got {url!r}"
        )
    sender = sections["sender"]
    if not sender.get("from_email"):
        problems.append(f"{path}: [sender] from_email: required, e.g. brief@example.org")
    for key in ("from_email", "reply_to", "unsubscribe_email"):
        value = sender.get(key)
        if value and not _EMAIL.match(value):
            problems.append(
                f"{where('sender', key)}: [sender] {key}: expected an email address, got {value!r}"
            )
    for key, value in sections["brand"].items():
        if key.endswith("_color") and not _COLOUR.match(value):
            problems.append(
                f"{where('brand', key)}: [brand] {key}: expected a colour like #1d4e89, "
                f"got {value!r}"
            )
    transport = sections["delivery"].get("transport", "outbox")
    if transport not in ("outbox", "sendgrid"):
        problems.append(
            f"{where('delivery', 'transport')}: [delivery] transport: expected 'outbox' or "
            f"'sendgrid', got {transport!r}"
        )
    if problems:
        raise ConfigError(
            "newsletter.toml has problems:\n  " + "\n  ".join(problems),
            hint="Fix them and run the command again; docs/configuration.md lists every setting.",
        )
    return Config(
        **newsletter_values,
        sender=Sender(**sender),
        brand=Brand(**sections["brand"]),
        delivery=Delivery(**sections["delivery"]),
        database_url=database_url,
    )


def load_config(path: Path) -> Config:
    """Read newsletter.toml at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save it as UTF-8.") from None
    return parse_config(text, path)
