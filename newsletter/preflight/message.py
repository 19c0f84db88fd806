"""What preflight checks: the message one subscriber receives, and where its parts came from.

The message is built as a send builds it (a Mail Send body from
:class:`~newsletter.delivery.requests.RequestBuilder`, made into the bytes the outbox
and SMTP transports write by :func:`~newsletter.delivery.personal.personal_message_bytes`)
for a sample subscriber, so SpamAssassin and the other checks see exactly what arrives.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path

from ..delivery.personal import personal_message_bytes
from ..delivery.requests import RequestBuilder
from ..issue import Issue
from ..project import Project, default_templates_dir
from ..render import RenderedEmail

SAMPLE_RECIPIENT = (1, "reader@example.org", "Sample Reader")
# Signs only the sample message's unsubscribe link; it never leaves this machine.
SAMPLE_SECRET = b"preflight sample secret, not used for sending"
_MARKDOWN_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?")
_BARE_URL = re.compile(r"https?://[^\s<>()\"']+")


@dataclass
class Subject:
    """The email under check, in every form the checks need."""

    project: Project
    issue_path: Path
    issue: Issue
    rendered: RenderedEmail  # rendered for sending (substitution tokens in place)
    html: str  # the HTML part as the sample subscriber gets it
    text: str  # the plain-text part as the sample subscriber gets it
    eml: bytes  # the whole message, as the outbox writes it
    personal_links: set[str] = field(default_factory=set)  # unsubscribe, view in browser

    @property
    def subject_line(self) -> str:
        return self.rendered.subject

    @property
    def preheader(self) -> str:
        return self.rendered.preheader

    def template_files(self) -> list[Path]:
        """The templates the email is made from: the project's copies win by name."""
        found: dict[str, Path] = {}
        for folder in (default_templates_dir(), self.project.templates_dir):
            if folder.is_dir():
                for path in folder.rglob("*.j2"):
                    found[str(path.relative_to(folder))] = path
        return [found[name] for name in sorted(found)]

    def where(self, url: str) -> str:
        """The issue field a URL comes from ("items[2].url"), or where else it is made."""
        model = self.issue.model
        for index, item in enumerate(model.items):
            if url == item.url:
                return f"items[{index}].url"
            if item.image and url == item.image:
                return f"items[{index}].image"
            if url in _links_in_markdown(item.summary or ""):
                return f"items[{index}].summary"
        if url in _links_in_markdown(getattr(model, "intro", "") or ""):
            return "intro"
        if url in self.personal_links:
            return "footer"
        return "template or newsletter.toml"

    def item_title(self, url: str) -> str:
        """The title of the item a URL belongs to, or ""."""
        where = self.where(url)
        if where.startswith("items["):
            return self.issue.model.items[int(where[6:where.index("]")])].title
        return ""


def _links_in_markdown(text: str) -> set[str]:
    return set(_MARKDOWN_LINK.findall(text)) | set(_BARE_URL.findall(text))


def _part(message: Message, subtype: str) -> str:
    for part in message.walk():
        if part.get_content_type() == f"text/{subtype}":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return ""


def subscriber_message(project: Project, issue_path: Path, issue: Issue,
                       rendered: RenderedEmail) -> Subject:
    """The message a sample subscriber of the default list would receive."""
    config = project.config
    builder = RequestBuilder(
        config, rendered, issue_name=issue.name,
        list_slug=config.delivery.default_list or "newsletter", secret=SAMPLE_SECRET,
    )
    body = builder.body([SAMPLE_RECIPIENT])
    # The bytes the outbox and SMTP transports write, made in memory (no folder to write
    # and read back) by the template builder that is tested byte for byte against them.
    _, eml = next(personal_message_bytes(config, body, "preflight", dt.datetime.now(dt.UTC)))
    message = message_from_bytes(eml)
    substitutions = body["personalizations"][0]["substitutions"]
    personal = {value for value in substitutions.values() if value.startswith("http")}
    return Subject(
        project=project, issue_path=issue_path, issue=issue, rendered=rendered,
        html=_part(message, "html"), text=_part(message, "plain"), eml=eml,
        personal_links=personal,
    )
