"""Signed, tamper-proof tokens for unsubscribe and confirmation links (HMAC-SHA256)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from typing import Any

from .errors import NewsletterError

SECRET_ENV = "NEWSLETTER_SECRET"


class BadToken(Exception):
    """The token was forged, altered, expired, or made for another purpose."""


def secret_from_env() -> bytes:
    """NEWSLETTER_SECRET as bytes; a clear error if unset or too short (never echoed)."""
    value = os.environ.get(SECRET_ENV, "")
    if len(value) < 16:
        raise NewsletterError(
            f"{SECRET_ENV} is not set, or shorter than 16 characters; it signs unsubscribe "
            "and confirmation links.",
            hint=f'Set it, e.g. `export {SECRET_ENV}="$(python -c '
            "'import secrets; print(secrets.token_urlsafe(32))')\"`, and keep it the same "
            "for every send and for `newsletter serve`.",
        )
    return value.encode()


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
        raise BadToken("malformed token") from exc
    expected = hmac.new(secret, purpose.encode() + b"\0" + raw, hashlib.sha256).digest()[:20]
    if not hmac.compare_digest(mac, expected):
        raise BadToken("bad signature")
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise BadToken("malformed payload") from exc
    if not isinstance(payload, dict):
        raise BadToken("malformed payload")
    if "exp" in payload and int(payload["exp"]) < time.time():
        raise BadToken("expired")
    return payload


def unsubscribe_token(secret: bytes, subscriber_id: int, list_slug: str) -> str:
    """Token for one subscriber's unsubscribe link from one list (never expires)."""
    return sign(secret, "unsubscribe", {"s": subscriber_id, "l": list_slug})


def read_unsubscribe_token(secret: bytes, token: str) -> tuple[int, str]:
    """(subscriber_id, list_slug) from an unsubscribe token, or raise BadToken."""
    payload = verify(secret, "unsubscribe", token)
    try:
        return int(payload["s"]), str(payload["l"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BadToken("malformed payload") from exc
