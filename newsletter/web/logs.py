"""Log lines an operator can use: time, level and component on every line; text or JSON.

``log_config(fmt)`` is a :func:`logging.config.dictConfig` dictionary for uvicorn's
``log_config`` (so every worker process sets it up the same way). Every line goes
through :class:`Scrub` first: email addresses are masked (``a***@example.org``),
unsubscribe/confirmation tokens and the values of secret environment variables
are hidden, whatever the level.
"""

from __future__ import annotations

import json
import logging
import os
import re
from datetime import UTC, datetime
from typing import Any

from .security import redact_tokens

FORMATS = ("text", "json")
LOG_FORMAT_ENV = "NEWSLETTER_LOG_FORMAT"
# Whose values must never be written to a log.
SECRET_ENVS = ("NEWSLETTER_SECRET", "NEWSLETTER_SECRET_PREVIOUS", "SENDGRID_API_KEY",
               "SENDGRID_WEBHOOK_PUBLIC_KEY", "NEWSLETTER_DATABASE_URL")
_EMAIL = re.compile(r"([A-Za-z0-9._%+'-])[A-Za-z0-9._%+'-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_PASSWORD_IN_URL = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
# Logger names as operators read them.
COMPONENTS = {"uvicorn.access": "access", "uvicorn.error": "server", "uvicorn": "server"}


def mask_emails(text: str) -> str:
    """``ann.lee@example.org`` → ``a***@example.org``."""
    return _EMAIL.sub(r"\1***@\2", text)


def scrub(text: str) -> str:
    """``text`` without full addresses, tokens, passwords in URLs or secret values."""
    for name in SECRET_ENVS:
        value = os.environ.get(name, "").strip()
        if len(value) >= 8 and value in text:
            text = text.replace(value, f"[{name}]")
    text = _PASSWORD_IN_URL.sub(r"\1***@", text)
    return mask_emails(redact_tokens(text))


def component(name: str) -> str:
    """The short name of a logger: ``newsletter.web`` → ``web``, ``uvicorn.access`` → ``access``."""
    return COMPONENTS.get(name, name.removeprefix("newsletter."))


class Scrub(logging.Filter):
    """Renders each record's message once, scrubbed (see :func:`scrub`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        record.component = component(record.name)
        return True


class TextFormatter(logging.Formatter):
    """``2026-01-05T10:00:00.123Z INFO web: message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(component)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return _timestamp(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, component, message (and error, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"time": _timestamp(record), "level": record.levelname,
                                "component": getattr(record, "component", record.name),
                                "message": record.getMessage()}
        if record.exc_text:
            line["error"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def log_config(fmt: str = "text", level: str = "INFO") -> dict[str, Any]:
    """A dictConfig for the service (the app's loggers and uvicorn's), to standard error."""
    formatter = "json" if fmt == "json" else "text"
    handler = {"class": "logging.StreamHandler", "formatter": formatter,
               "filters": ["scrub"], "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"scrub": {"()": Scrub}},
        "formatters": {"text": {"()": TextFormatter}, "json": {"()": JsonFormatter}},
        "handlers": {"default": handler},
        "loggers": {
            "newsletter": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["default"], "level": level, "propagate": False},
        },
    }
