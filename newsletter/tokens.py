"""Signed, tamper-proof tokens for unsubscribe and confirmation links (HMAC-SHA256).

One secret signs every link, found the same way by every command
(:func:`project_secret`): NEWSLETTER_SECRET, else the project's
``subscribers/.secret``, made once (0600, git-ignored). During a rotation
NEWSLETTER_SECRET_PREVIOUS holds the old secret(s), comma-separated: new links are
signed with the current one, and links signed with either are accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any, NamedTuple

from .errors import NewsletterError

SECRET_ENV = "NEWSLETTER_SECRET"
PREVIOUS_ENV = "NEWSLETTER_SECRET_PREVIOUS"
SECRET_FILE = "subscribers/.secret"  # relative to the project folder
MIN_LENGTH = 16

logger = logging.getLogger("newsletter.tokens")


class BadToken(Exception):
    """The token was forged, altered, expired, or made for another purpose."""


class Secret(bytes):
    """The current signing secret, plus the ``previous`` ones still accepted.

    It is ``bytes`` (the current secret), so code that signs needs nothing else;
    :func:`verify` also tries ``previous``. ``source`` says where it was found.
    """

    previous: tuple[bytes, ...]
    source: str

    def __new__(cls, value: bytes, previous: tuple[bytes, ...] = (),
                source: str = SECRET_ENV) -> Secret:
        made = super().__new__(cls, value)
        made.previous = previous
        made.source = source
        return made

    def __repr__(self) -> str:  # never the value
        return f"Secret(from {self.source}, {len(self.previous)} previous)"


_KEEP = (
    "Links already sent were signed with the secret they carry: never replace it without "
    f"keeping the old one in {PREVIOUS_ENV} (docs/web-service.md, Secrets)."
)


def _previous() -> tuple[bytes, ...]:
    values = [v.strip() for v in os.environ.get(PREVIOUS_ENV, "").split(",") if v.strip()]
    if any(len(v) < MIN_LENGTH for v in values):
        raise NewsletterError(
            f"{PREVIOUS_ENV} holds a value shorter than {MIN_LENGTH} characters.",
            hint=f"Set it to the exact secret used before (several: comma-separated). {_KEEP}",
        )
    return tuple(v.encode() for v in values)


def secret_from_env() -> Secret:
    """NEWSLETTER_SECRET (and NEWSLETTER_SECRET_PREVIOUS); a clear error if unset or short."""
    value = os.environ.get(SECRET_ENV, "")
    if len(value) < MIN_LENGTH:
        raise NewsletterError(
            f"{SECRET_ENV} is not set, or shorter than {MIN_LENGTH} characters; it signs "
            "unsubscribe and confirmation links.",
            hint=f"Set it to the secret your links were signed with (the text in {SECRET_FILE} "
            f"if this project sent without {SECRET_ENV}), or unset it to use that file. {_KEEP}",
        )
    return Secret(value.encode(), _previous(), SECRET_ENV)


def project_secret(root: Path) -> Secret:
    """The one secret of the project in ``root``, found the same way by every command.

    NEWSLETTER_SECRET if set, else ``subscribers/.secret`` in the project, made once
    (readable by its owner only) when no secret exists yet.
    """
    if os.environ.get(SECRET_ENV):
        return secret_from_env()
    path = root / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it a moment ago: use theirs
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(32) + "\n")
    value = path.read_text(encoding="utf-8").strip()
    if len(value) < MIN_LENGTH:
        raise NewsletterError(
            f"{path} holds fewer than {MIN_LENGTH} characters, too few to sign links safely.",
            hint=f"If no email went out with it, delete it and a new one is made. {_KEEP}",
        )
    return Secret(value.encode(), _previous(), SECRET_FILE)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: bytes, purpose: str, payload: dict[str, Any], max_age: int | None = None) -> str:
    """Return a URL-safe token carrying ``payload``, bound to ``purpose``.

    With ``max_age`` (seconds) the token expires.
    """
    body = dict(payload)
    if max_age is not None:
        body["exp"] = int(time.time()) + max_age
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    mac = hmac.new(secret, purpose.encode() + b"\0" + raw, hashlib.sha256).digest()
    return f"{_b64(raw)}.{_b64(mac[:20])}"


def verify(secret: bytes, purpose: str, token: str) -> dict[str, Any]:
    """Return the payload of a token made by :func:`sign`, or raise BadToken."""
    try:
        raw_part, mac_part = token.split(".", 1)
        raw = _unb64(raw_part)
        mac = _unb64(mac_part)
    except (ValueError, TypeError) as exc:
        raise _rejected(purpose, "malformed token") from exc
    keys = (secret, *getattr(secret, "previous", ()))
    if not any(_signed_by(key, purpose, raw, mac) for key in keys):
        raise _rejected(purpose, "bad signature")
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise _rejected(purpose, "malformed payload") from exc
    if not isinstance(payload, dict):
        raise _rejected(purpose, "malformed payload")
    if "exp" in payload and int(payload["exp"]) < time.time():
        raise _rejected(purpose, "expired")
    return payload


def _signed_by(key: bytes, purpose: str, raw: bytes, mac: bytes) -> bool:
    expected = hmac.new(key, purpose.encode() + b"\0" + raw, hashlib.sha256).digest()[:20]
    return hmac.compare_digest(mac, expected)


def _rejected(purpose: str, reason: str) -> BadToken:
    """A BadToken, logged at warning level with its reason (never the token itself)."""
    logger.warning("Rejected a %s link: %s", purpose, reason)
    return BadToken(reason)


ADDRESS_PURPOSE = b"address\0"


def address_tag(secret: bytes, email: str) -> str:
    """A short keyed hash of an address: binds a link to one person, whatever their id."""
    digest = hmac.new(secret, ADDRESS_PURPOSE + email.lower().encode(), hashlib.sha256).digest()
    return _b64(digest[:6])


def unsubscribe_token(secret: bytes, subscriber_id: int, list_slug: str,
                      email: str | None = None) -> str:
    """Token for one subscriber's unsubscribe link from one list (never expires).

    With ``email`` (always, for links that are sent) the token also carries
    :func:`address_tag`, so after a move it can never act on someone else.
    """
    payload: dict[str, Any] = {"s": subscriber_id, "l": list_slug}
    if email is not None:
        payload["a"] = address_tag(secret, email)
    return sign(secret, "unsubscribe", payload)


class LinkSubject(NamedTuple):
    """Whom a verified link names: the id, the list, and the address tag (old links: None)."""

    subscriber_id: int
    list_slug: str
    tag: str | None

    def is_for(self, secret: bytes, email: str) -> bool:
        """True if this link was made for ``email`` (a link without a tag: by id only)."""
        if self.tag is None:
            return True
        keys = (secret, *getattr(secret, "previous", ()))
        return any(hmac.compare_digest(self.tag, address_tag(key, email)) for key in keys)


def read_unsubscribe_link(secret: bytes, token: str) -> LinkSubject:
    """The subject of an unsubscribe token, or raise BadToken."""
    payload = verify(secret, "unsubscribe", token)
    try:
        tag = payload.get("a")
        return LinkSubject(int(payload["s"]), str(payload["l"]),
                           None if tag is None else str(tag))
    except (KeyError, TypeError, ValueError) as exc:
        raise BadToken("malformed payload") from exc


def read_unsubscribe_token(secret: bytes, token: str) -> tuple[int, str]:
    """(subscriber_id, list_slug) from an unsubscribe token, or raise BadToken."""
    subject = read_unsubscribe_link(secret, token)
    return subject.subscriber_id, subject.list_slug
