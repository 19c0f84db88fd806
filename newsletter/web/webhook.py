"""SendGrid's signed Event Webhook: checking the signature, then applying the batch.

SendGrid signs ``timestamp + raw body`` with ECDSA P-256/SHA-256 and sends the
base64 DER signature and the timestamp in two headers. The check uses the sendgrid
package's own helper (:class:`sendgrid.helpers.eventwebhook.EventWebhook`); on top
of it, timestamps outside a tolerance window are refused, so an old captured
request cannot be replayed later (a replay inside the window is deduped by event id).
"""

from __future__ import annotations

import binascii
import os
import time
from collections.abc import Callable
from typing import Any

from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader

from ..errors import NewsletterError
from .jsonbody import load_json

PUBLIC_KEY_ENV = "SENDGRID_WEBHOOK_PUBLIC_KEY"
SIGNATURE_HEADER = EventWebhookHeader.SIGNATURE
TIMESTAMP_HEADER = EventWebhookHeader.TIMESTAMP
DEFAULT_TOLERANCE = 300  # seconds either side of our clock
MAX_SIGNATURE = 200  # base64 of a DER P-256 signature is about 96 characters


class SignatureRejected(Exception):
    """The request is not a genuine, fresh SendGrid delivery. ``status``: 401 or 403."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _bare_key(text: str) -> str:
    """The base64 body of a public key, whether pasted bare or as a PEM block."""
    lines = [line.strip() for line in text.strip().splitlines()]
    return "".join(line for line in lines if line and not line.startswith("-----"))


class WebhookVerifier:
    """Checks X-Twilio-Email-Event-Webhook-Signature/-Timestamp against one public key."""

    def __init__(
        self,
        public_key: str,
        *,
        tolerance: int = DEFAULT_TOLERANCE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._helper = EventWebhook()
        try:
            self._key = self._helper.convert_public_key_to_ecdsa(_bare_key(public_key))
        except Exception:  # any parse failure; the key itself is never shown
            raise NewsletterError(
                f"{PUBLIC_KEY_ENV} is not a valid public key.",
                hint="Copy the verification key from SendGrid (Settings → Mail Settings → "
                "Event Webhook → Signature Verification) into it, all on one line.",
            ) from None
        self.tolerance = tolerance
        self.clock = clock

    def __repr__(self) -> str:
        return f"WebhookVerifier(tolerance={self.tolerance})"

    def verify(self, body: bytes, signature: str | None, timestamp: str | None) -> None:
        """Return if ``body`` carries a valid, fresh signature; else raise SignatureRejected."""
        if not signature or not timestamp:
            raise SignatureRejected(401, "missing signature headers")
        if len(signature) > MAX_SIGNATURE or not timestamp.isdigit() or len(timestamp) > 12:
            raise SignatureRejected(403, "malformed signature headers")
        if abs(self.clock() - int(timestamp)) > self.tolerance:
            raise SignatureRejected(403, "stale or future timestamp")
        try:
            payload = body.decode("utf-8")
            valid = self._helper.verify_signature(payload, signature, timestamp, self._key)
        except (UnicodeDecodeError, binascii.Error, ValueError):
            valid = False
        if not valid:
            raise SignatureRejected(403, "invalid signature")


def verifier_from_env(
    *, tolerance: int = DEFAULT_TOLERANCE, clock: Callable[[], float] = time.time
) -> WebhookVerifier | None:
    """A verifier for SENDGRID_WEBHOOK_PUBLIC_KEY, or None if it is not set."""
    key = os.environ.get(PUBLIC_KEY_ENV, "").strip()
    return WebhookVerifier(key, tolerance=tolerance, clock=clock) if key else None


def parse_events(body: bytes) -> list[Any]:
    """The JSON array of events in a webhook body; ValueError with a safe reason if not."""
    data = load_json(body)  # BadJSON is a ValueError with a plain reason
    if not isinstance(data, list):
        raise ValueError("expected a JSON array of events")
    return data
