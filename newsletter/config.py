"""newsletter.toml: one newsletter's settings, read and checked in full when the file is read.

Each setting is checked once, here, by the models of config_tables; an error names the
file, the line, the table and the setting, and says in plain words what to write instead.
The rest of the code may rely on every value being usable (a real time zone, a batch size
SendGrid accepts, an https logo address ...).
"""

from __future__ import annotations

import re
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from .config_tables import Brand, Database, Delivery, Sender, Settings, Smtp, Studio, Table, Web
from .errors import ConfigError

CONFIG_NAME = "newsletter.toml"


class Config(Settings):
    """All of newsletter.toml, checked: [newsletter] settings plus one attribute per table."""

    sender: Sender
    brand: Brand = Brand()
    delivery: Delivery = Delivery()
    smtp: Smtp = Smtp()
    web: Web = Web()
    database_url: str = ""
    studio: Studio = Studio()

    @cached_property
    def zone(self) -> ZoneInfo:
        """The newsletter's time zone (``timezone``), for dates and scheduled sends."""
        return ZoneInfo(self.timezone)

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


class _File(Table):
    """newsletter.toml as written: one attribute per table."""

    newsletter: Settings
    sender: Sender
    brand: Brand = Brand()
    delivery: Delivery = Delivery()
    smtp: Smtp = Smtp()
    database: Database = Database()
    web: Web = Web()
    studio: Studio = Studio()


# --- errors in plain words -----------------------------------------------------------------

_TABLES: dict[str, type[Table]] = {
    "newsletter": Settings,
    "sender": Sender,
    "brand": Brand,
    "delivery": Delivery,
    "smtp": Smtp,
    "database": Database,
    "web": Web,
    "studio": Studio,
}


def _key_line(text: str, table: str | None, key: str) -> int:
    """Best-effort line number of ``key`` inside ``[table]``, or of ``[table]`` itself
    when ``key`` is empty (0 if not found)."""
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


def _shown(value: Any) -> str:
    """A value as the person wrote it in the file, shortened."""
    if isinstance(value, list):
        value = "[" + ", ".join(_shown(item) for item in value) + "]"
        return value if len(value) <= 60 else value[:57] + "..."
    shown = (
        f'"{value}"'
        if isinstance(value, str)
        else str(value).lower()
        if isinstance(value, bool)
        else str(value)
    )
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _problem(error: Any, text: str, path: Path) -> str:
    """One pydantic error as ``file:line: [table] key: what to write``."""
    loc = [str(part) for part in error["loc"]]
    kind = error["type"]
    table = loc[0]
    if len(loc) == 1:
        line = _key_line(text, table, "") or _key_line(text, None, table)
        where = f"{path}:{line}" if line else str(path)
        if kind == "missing":
            needed = [k for k, f in _TABLES[table].model_fields.items() if f.is_required()]
            holds = f"; it holds {', '.join(needed)}" if needed else ""
            return f"{where}: the [{table}] table is missing{holds}"
        if kind == "extra_forbidden":
            if isinstance(error["input"], dict):
                return f"{where}: unknown table [{table}]; the tables are " + ", ".join(
                    f"[{name}]" for name in _TABLES
                )
            return (
                f"{where}: {table}: a setting above the first [table]; move it into "
                "the table it belongs to, e.g. [newsletter]"
            )
        return f"{where}: {table} must be a table, written [{table}] on a line of its own"
    key = loc[1]
    line = _key_line(text, table, key) or _key_line(text, table, "")
    where = f"{path}:{line}" if line else str(path)
    fields = _TABLES[table].model_fields
    if kind == "extra_forbidden":
        return f"{where}: [{table}] {key}: unknown setting; the settings here are " + ", ".join(
            fields
        )
    expected = fields[key].description or "see docs/configuration.md"
    if kind == "missing":
        return f"{where}: [{table}] {key}: required; {expected}"
    reason = str(error.get("ctx", {}).get("error", "")) if kind == "value_error" else ""
    said = f"it says {_shown(error['input'])}" + (f"; {reason}" if reason else "")
    return f"{where}: [{table}] {key}: {expected} ({said})"


def parse_config(text: str, path: Path) -> Config:
    """Parse and check the text of a newsletter.toml, raising ConfigError with the lines."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid TOML: {exc}",
            hint=f'Fix the syntax in {path} (text needs "quotes"); docs/configuration.md '
            "shows a complete example.",
        ) from None
    try:
        file = _File.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(error, text, path) for error in exc.errors()]
        raise ConfigError(
            f"{CONFIG_NAME} has problems:\n  " + "\n  ".join(problems),
            hint="Fix them and run the command again; docs/configuration.md lists every setting.",
        ) from None
    return Config(
        **dict(file.newsletter),
        sender=file.sender,
        brand=file.brand,
        delivery=file.delivery,
        smtp=file.smtp,
        web=file.web,
        database_url=file.database.url,
        studio=file.studio,
    )


def load_config(path: Path) -> Config:
    """Read and check newsletter.toml at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save it as UTF-8.") from None
    return parse_config(text, path)
