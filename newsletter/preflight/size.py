"""Size and truncation: Gmail's clipping, what a phone's inbox shows, the plain-text part."""

from __future__ import annotations

import unicodedata

from ..issue import GMAIL_CLIP_BYTES
from .message import Subject
from .parse import document, links, text_links
from .report import CheckResult

NEAR_CLIP = 90 * 1024
# Inbox lists on a 375 px wide phone (iPhone SE/mini class): the room each line has, in
# CSS pixels, and the font size. Estimates from screenshots; real widths vary by a few
# characters with the font and the sender's name.
PHONE_LINES = {
    "Gmail app": {"subject": (255, 14.0, 1), "preheader": (255, 14.0, 1)},
    "iOS Mail": {"subject": (310, 15.0, 1), "preheader": (310, 15.0, 2)},
}


def char_width(char: str) -> float:
    """A character's width in em, for the system fonts of phones (SF, Roboto)."""
    if unicodedata.east_asian_width(char) in ("W", "F"):
        return 1.0
    if char in " ":
        return 0.27
    if char in "iljtf.,;:'!|Iír()[]\u2019\u2018":
        return 0.3
    if char in "mwMW@":
        return 0.85
    if char.isupper():
        return 0.66
    if char.isdigit():
        return 0.56
    return 0.52


def visible(text: str, width: float, size: float, lines: int = 1) -> str:
    """How much of ``text`` fits into ``lines`` lines of ``width`` px (with a final "…")."""
    room = width * lines
    used = 0.0
    for index, char in enumerate(text):
        used += char_width(char) * size
        if used > room:
            return text[:max(index - 1, 0)].rstrip() + "…"
    return text


def check_size(subject: Subject) -> CheckResult:
    """Clipping, truncation in the inbox, and the plain-text part's links."""
    result = CheckResult("size", "Size and truncation")
    size = len(subject.html.encode("utf-8"))
    limit = GMAIL_CLIP_BYTES // 1024
    if size > GMAIL_CLIP_BYTES:
        result.add("error", f"{size / 1024:.0f} KB", "HTML", f"Gmail clips emails over {limit} "
                   "KB and hides the rest, including the unsubscribe link",
                   "Shorten summaries or move items to next week.")
    elif size > NEAR_CLIP:
        result.add("warning", f"{size / 1024:.0f} KB", "HTML", f"close to Gmail's {limit} KB "
                   "clipping", "Keep this issue from growing; shorten a summary or two.")
    for name, value in (("subject", subject.subject_line), ("preheader", subject.preheader)):
        if not value:
            result.add("warning", name, name, "there is none: the inbox shows the first words "
                       "of the email instead", f"Add a {name} to the issue file.")
            continue
        for client, lines in PHONE_LINES.items():
            width, font, rows = lines[name]
            shown = visible(value, width, font, rows)
            if shown != value:
                result.add("warning" if name == "subject" else "info", client, name,
                           f"a 375 px phone shows about: “{shown}”",
                           "Put the words that matter first." if name == "subject"
                           else "Fine if the start says enough.")
    if not subject.text.strip():
        result.add("error", "plain text", "email.txt.j2", "the plain-text part is empty",
                   "Check templates/email.txt.j2; spam filters distrust HTML-only email.")
    else:
        in_text = set(text_links(subject.text))
        for link in links(document(subject.html)):
            # A linked picture (the logo) needs no words in the text part.
            if link.href not in in_text and link.has_words:
                result.add("warning", link.href, subject.where(link.href),
                           "is in the HTML but not in the plain-text part",
                           "Add it to templates/email.txt.j2 (readers of plain text need it).")
    result.summary = f"{size / 1024:.0f} KB of HTML (Gmail clips at {limit} KB)"
    # One finding per missing link, not per place it is linked from.
    result.findings = list(dict.fromkeys(result.findings))
    return result
