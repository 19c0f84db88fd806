"""Errors that reach a person: each says what went wrong and which command to run next."""

from __future__ import annotations


class NewsletterError(Exception):
    """An error a user can fix.

    ``hint`` names the next thing to do (usually a command); the CLI prints it
    under the message. Messages must never include secrets.
    """

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(NewsletterError):
    """newsletter.toml is missing or wrong."""


class IssueFileError(NewsletterError):
    """An issue file cannot be used (see the diagnostics it carries)."""

    def __init__(self, message: str, diagnostics: list | None = None, hint: str | None = None):
        super().__init__(message, hint)
        self.diagnostics = diagnostics or []
