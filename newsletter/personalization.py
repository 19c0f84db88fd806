"""What differs per reader: the greeting, the substitution tokens a send renders with,
and the values that replace them for one recipient."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from markupsafe import escape

# --- the greeting -------------------------------------------------------------------------
# "Hello Ann" from the reader's first name, or newsletter.toml's greeting alone ("Hello")
# when the first name is not known. The rule (docs/templates.md): a first_name attribute
# wins; else the first word of the name, except for names in a family-name-first script
# (Chinese, Japanese, Korean: the first word would be the family name), names written
# "Family, Given", and titles such as "Dr." (skipped). Then the greeting stands alone.

DEFAULT_GREETING = "Hello"

# Han (CJK ideographs and extensions), Hiragana, Katakana, Hangul syllables and jamo.
_FAMILY_NAME_FIRST = re.compile(
    "[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f]"
)


def first_name(name: str | None, given: str | None = None) -> str:
    """The reader's first name for the greeting, or "" when it should not be guessed."""
    if given and given.strip():
        return " ".join(given.split())
    if not name or "," in name or _FAMILY_NAME_FIRST.search(name):
        return ""
    words = [word for word in name.split() if not word.endswith(".")]
    return words[0] if words else ""


def greeting_line(greeting: str, name: str | None, given: str | None = None) -> str:
    """"Hello Ann" for Ann Lee; the greeting alone when there is no first name."""
    first = first_name(name, given)
    return f"{greeting} {first}" if first else greeting


@dataclass(frozen=True)
class Personalization:
    """What differs per recipient. Values are plain text; templates escape them."""

    name: str = ""
    unsubscribe_url: str = ""
    view_url: str = ""
    # "Hello Ann", or the configured greeting alone (see newsletter.greeting).
    greeting: str = DEFAULT_GREETING


# Sending renders once with these tokens; the transport (or SendGrid) substitutes them
# per recipient, everywhere they occur. So they must never occur in real text: an issue
# containing TOKEN_MARK is refused by `newsletter check`. The HTML gets its own name
# token because its value must be HTML-escaped.
TEXT_TOKENS = Personalization(
    name="[[nl:name]]", unsubscribe_url="[[nl:unsubscribe_url]]", view_url="[[nl:view_url]]",
    greeting="[[nl:greeting]]",
)
HTML_TOKENS = replace(TEXT_TOKENS, name="[[nl:name_html]]", greeting="[[nl:greeting_html]]")


def substitutions(
    name: str, unsubscribe_url: str, view_url: str, *, greeting: str = DEFAULT_GREETING,
    given_name: str | None = None,
) -> dict[str, str]:
    """Token → value for one recipient of a message rendered with ``for_sending=True``.

    ``greeting`` is newsletter.toml's; ``given_name`` the reader's first_name attribute.
    """
    shown = name.strip() or "there"
    line = greeting_line(greeting, name, given_name)
    return {
        TEXT_TOKENS.name: shown,
        HTML_TOKENS.name: str(escape(shown)),
        TEXT_TOKENS.greeting: line,
        HTML_TOKENS.greeting: str(escape(line)),
        # Links are our own URLs (no characters HTML would need escaped), so one value
        # serves both parts.
        TEXT_TOKENS.unsubscribe_url: unsubscribe_url,
        TEXT_TOKENS.view_url: view_url,
    }


def personalize(text: str, values: dict[str, str]) -> str:
    """Replace substitution tokens in one rendered part, as SendGrid does."""
    if not values:
        return text
    pattern = re.compile("|".join(re.escape(token) for token in values))
    return pattern.sub(lambda match: values[match.group(0)], text)
