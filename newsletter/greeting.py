"""The greeting line of each email: "Hello Ann" from the reader's first name, or the
newsletter's greeting alone ("Hello") when the first name is not known.

The rule (docs/templates.md): a ``first_name`` attribute (from an import) wins; else the
first word of the name, except for names written in a family-name-first script (Chinese,
Japanese, Korean: the first word would be the family name), names written "Family,
Given", and titles such as "Dr." (skipped). Then there is no first name and the greeting
stands alone.
"""

from __future__ import annotations

import re

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
