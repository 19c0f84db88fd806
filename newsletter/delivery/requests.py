"""Mail Send request bodies: the issue once per request, up to 1000 recipients each.

The HTML and text are rendered once with substitution tokens; every recipient
gets a personalization carrying their address, their substitutions (name,
greeting, signed unsubscribe URL, view-in-browser URL) and their own
List-Unsubscribe headers (RFC 8058 one-click). Every message also carries List-Id
(RFC 2919) and Feedback-ID (Gmail's campaign:list:sender form) in the body's
``headers``, the same for all its recipients.

With ``[delivery] sendgrid_unsubscribe_group`` set and no web service (no ``web_url``),
nobody hosts our unsubscribe page: the footer's link is then SendGrid's own
``<%asm_group_unsubscribe_raw_url%>`` (SendGrid fills it in per recipient, for the
group in ``asm``), and List-Unsubscribe is the ``mailto:`` of ``unsubscribe_email``
if one is set (else SendGrid's own header stays). Building is the hot path of a large send, so it
avoids per-recipient objects beyond the dicts the JSON needs.
"""

from __future__ import annotations

import binascii
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from email.utils import formataddr
from typing import Any

from markupsafe import escape

from ..config import Config
from ..emails import ascii_email
from ..personalization import HTML_TOKENS, TEXT_TOKENS, greeting_line
from ..render import RenderedEmail
from ..tokens import ADDRESS_PURPOSE
from . import _json

MAX_PERSONALIZATIONS = 1000
MAX_CATEGORIES = 10
MAX_CATEGORY_CHARS = 255
MAX_SCHEDULE_AHEAD = dt.timedelta(hours=72)
ONE_CLICK = "List-Unsubscribe=One-Click"
# SendGrid replaces this with the recipient's unsubscribe link for the message's asm group.
ASM_UNSUBSCRIBE_URL = "<%asm_group_unsubscribe_raw_url%>"
TEST_PREFIX = "[TEST] "
_CATEGORY_UNSAFE = re.compile(r"[^a-z0-9:._-]+")
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")
# A recipient: (subscriber id, email, name), optionally with their first_name attribute.
Recipient = Sequence[Any]


def sender_fields(config: Config) -> dict[str, Any]:
    """from and reply_to of every message, from newsletter.toml."""
    fields: dict[str, Any] = {
        "from": {"email": config.sender.from_email, "name": config.sender.from_name or config.name}
    }
    if config.sender.reply_to:
        fields["reply_to"] = {"email": config.sender.reply_to}
    return fields


def category(text: str) -> str:
    """A SendGrid category: lower case, no spaces, at most 255 characters."""
    return _CATEGORY_UNSAFE.sub("-", text.lower()).strip("-")[:MAX_CATEGORY_CHARS] or "newsletter"


def list_id(config: Config, list_slug: str) -> str:
    """RFC 2919 List-Id: the newsletter's name and <slug.sender-domain>, one per list."""
    domain = config.sender.from_email.rpartition("@")[2].lower() or "localhost"
    label = _LABEL_UNSAFE.sub("-", list_slug).strip("-") or "list"
    return formataddr((f"{config.name} ({list_slug})", f"{label}.{domain}"))


def feedback_id(config: Config, issue_name: str, list_slug: str) -> str:
    """Feedback-ID as Gmail Postmaster Tools reads it: campaign:list:sender.

    Campaign is the issue, sender the From domain; the parts may hold no colons.
    """
    def part(text: str) -> str:
        return category(text).replace(":", "-")

    domain = config.sender.from_email.rpartition("@")[2] or "newsletter"
    return f"{part(issue_name)}:{part(list_slug)}:{part(domain)}"


def bulk_headers(config: Config, issue_name: str, list_slug: str) -> dict[str, str]:
    """The headers every bulk message of one send carries (List-Id, Feedback-ID)."""
    return {
        "List-Id": list_id(config, list_slug),
        "Feedback-ID": feedback_id(config, issue_name, list_slug),
    }


class UnsubscribeSigner:
    """Makes the same tokens as :func:`newsletter.tokens.unsubscribe_token`, faster.

    One list per signer: the JSON prefix is computed once, and so are the
    HMAC-SHA256 inner and outer hash states (RFC 2104), which a million-recipient
    send would otherwise recompute for every token.
    """

    def __init__(self, secret: bytes, list_slug: str) -> None:
        # tokens.sign: json.dumps({"a": tag, "l": slug, "s": id}, separators=(",", ":"),
        # sort_keys=True); the tag is tokens.address_tag.
        self._middle = '","l":' + json.dumps(list_slug) + ',"s":'
        key = hashlib.sha256(secret).digest() if len(secret) > 64 else secret
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(k ^ 0x36 for k in key))
        self._outer = hashlib.sha256(bytes(k ^ 0x5C for k in key))
        self._tag_inner = self._inner.copy()
        self._tag_inner.update(ADDRESS_PURPOSE)
        self._inner.update(b"unsubscribe\0")  # tokens.sign's purpose + NUL

    def _mac(self, inner_start: Any, message: bytes) -> bytes:
        inner = inner_start.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def token(self, subscriber_id: int, email: str) -> str:
        tag = _b64(self._mac(self._tag_inner, email.lower().encode())[:6])
        raw = f'{{"a":"{tag}{self._middle}{subscriber_id}}}'.encode()
        return _b64(raw) + "." + _b64(self._mac(self._inner, raw)[:20])


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


def _html_text(value: str) -> str:
    """HTML-escaped text (most names need no escaping: skip the work then)."""
    if "&" in value or "<" in value or ">" in value or '"' in value or "'" in value:
        return str(escape(value))
    return value


@dataclass(frozen=True)
class Schedule:
    """A scheduled send: when (UTC) and the SendGrid batch id that can cancel it."""

    send_at: dt.datetime
    batch_id: str


class RequestBuilder:
    """Builds the Mail Send bodies of one send (a campaign, or a test send).

    ``custom_args`` and ``categories`` identify the newsletter, issue and list;
    each request adds its batch number as custom_args ``nl_batch``.
    """

    def __init__(
        self,
        config: Config,
        rendered: RenderedEmail,
        *,
        issue_name: str,
        list_slug: str,
        secret: bytes | None,
        campaign_id: int | None = None,
        subject_prefix: str = "",
        schedule: Schedule | None = None,
        sandbox: bool = False,
    ) -> None:
        self.config = config
        self.view_url = config.issue_url(issue_name)
        self.unsubscribe_base = f"{config.service_url}/unsubscribe/"
        self.signer = UnsubscribeSigner(secret, list_slug) if secret else None
        unsubscribe_email = config.sender.unsubscribe_email
        self.mailto = (
            f", <mailto:{unsubscribe_email}?subject=unsubscribe>" if unsubscribe_email else ""
        )
        self.asm_group = config.delivery.sendgrid_unsubscribe_group
        # No web service to host /unsubscribe/: SendGrid's own unsubscribe page instead.
        self.sendgrid_unsubscribe = bool(self.asm_group) and not config.web_url
        if self.sendgrid_unsubscribe:
            rendered = replace(
                rendered,
                text=rendered.text.replace(TEXT_TOKENS.unsubscribe_url, ASM_UNSUBSCRIBE_URL),
                html=rendered.html.replace(HTML_TOKENS.unsubscribe_url, ASM_UNSUBSCRIBE_URL),
            )
        custom_args = {"nl_list": list_slug, "nl_issue": issue_name}
        if campaign_id is not None:
            custom_args["nl_campaign"] = str(campaign_id)
        if subject_prefix:
            custom_args["nl_test"] = "1"
        self.custom_args = custom_args
        categories = [category(config.name), category(f"issue:{issue_name}"),
                      category(f"list:{list_slug}")]
        if subject_prefix:
            categories.append("test")
        self.common: dict[str, Any] = {
            **sender_fields(config),
            "subject": subject_prefix + rendered.subject,
            # SendGrid requires text/plain before text/html.
            "content": [
                {"type": "text/plain", "value": rendered.text},
                {"type": "text/html", "value": rendered.html},
            ],
            "categories": list(dict.fromkeys(categories))[:MAX_CATEGORIES],
            "headers": bulk_headers(config, issue_name, list_slug),
        }
        if self.asm_group:
            self.common["asm"] = {"group_id": self.asm_group}
        if schedule is not None:
            self.common["send_at"] = int(schedule.send_at.timestamp())
            self.common["batch_id"] = schedule.batch_id
        if sandbox:
            self.common["mail_settings"] = {"sandbox_mode": {"enable": True}}

    def unsubscribe_url(self, subscriber_id: int | None, email: str = "") -> str:
        """The signed one-click unsubscribe URL of one subscriber (a placeholder for tests)."""
        if self.signer is None or subscriber_id is None:
            return self.unsubscribe_base + "test"
        return self.unsubscribe_base + self.signer.token(subscriber_id, email)

    def personalizations(self, recipients: Iterable[Recipient]) -> list[dict[str, Any]]:
        """One personalization per (subscriber id, email, name[, first_name])."""
        out: list[dict[str, Any]] = []
        append = out.append
        view_url = self.view_url
        mailto = self.mailto
        with_headers = not self.asm_group
        # SendGrid's group mode: only a mailto: header of our own, and only if there is one.
        mailto_only = (
            {"List-Unsubscribe": mailto.removeprefix(", ")}
            if self.sendgrid_unsubscribe and mailto else None
        )
        name_token, html_name_token = TEXT_TOKENS.name, HTML_TOKENS.name
        greeting_token, html_greeting_token = TEXT_TOKENS.greeting, HTML_TOKENS.greeting
        greeting = self.config.greeting
        unsub_token, view_token = TEXT_TOKENS.unsubscribe_url, TEXT_TOKENS.view_url
        unsubscribe_url = self.unsubscribe_url
        for subscriber_id, email, name, *given in recipients:
            url = unsubscribe_url(subscriber_id, email)
            line = greeting_line(greeting, name, given[0] if given else None)
            shown = name.strip() if name else ""
            if not email.isascii():  # SendGrid wants the xn-- form of international domains
                email = ascii_email(email)
            to = {"email": email, "name": shown} if shown else {"email": email}
            shown = shown or "there"
            person: dict[str, Any] = {
                "to": [to],
                "substitutions": {
                    name_token: shown,
                    html_name_token: _html_text(shown),
                    greeting_token: line,
                    html_greeting_token: _html_text(line),
                    unsub_token: url,
                    view_token: view_url,
                },
            }
            if with_headers:
                person["headers"] = {
                    "List-Unsubscribe": f"<{url}>{mailto}",
                    "List-Unsubscribe-Post": ONE_CLICK,
                }
            elif mailto_only is not None:
                person["headers"] = dict(mailto_only)
            append(person)
        return out

    def body(self, recipients: Iterable[Recipient], batch_number: int = 0) -> dict[str, Any]:
        """The whole Mail Send body for up to 1000 recipients."""
        personalizations = self.personalizations(recipients)
        if len(personalizations) > MAX_PERSONALIZATIONS:
            raise ValueError(f"{len(personalizations)} recipients in one request; at most 1000")
        return {
            "personalizations": personalizations,
            **self.common,
            "custom_args": {**self.custom_args, "nl_batch": str(batch_number)},
        }

    def payload(
        self, recipients: Iterable[Recipient], batch_number: int = 0
    ) -> tuple[dict[str, Any], bytes]:
        """(body, its JSON) for up to 1000 recipients."""
        body = self.body(recipients, batch_number)
        return body, _json.dumps(body)
