"""What templates can call beyond Jinja2's own: dates, break points in long words, an
item's meta line and runs of items with and without pictures (Markdown is in
markdown_format, colours in colours)."""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache

from .issue import Item

# Email programs ignore overflow-wrap, so a long unbroken word (a URL, a German compound)
# would widen the email on a phone. Words of LONG_WORD characters or more get break
# opportunities: a soft hyphen inside letters, a zero-width space after URL punctuation.
LONG_WORD = 16
_LONG_WORD = re.compile(rf"\S{{{LONG_WORD},}}")
_URL_BREAK = re.compile(r"([/._?&=#-])(?=\S)")
_LETTER_RUN = re.compile(rf"[^\W\d_]{{{LONG_WORD},}}")


def _soft_hyphens(match: re.Match[str]) -> str:
    word = match.group(0)
    step = LONG_WORD // 2
    return "\u00ad".join(word[i:i + step] for i in range(0, len(word), step))


def _break_word(match: re.Match[str]) -> str:
    word = _URL_BREAK.sub("\\1\u200b", match.group(0))
    return _LETTER_RUN.sub(_soft_hyphens, word)


@lru_cache(maxsize=4096)
def breakable(text: str | None) -> str:
    """``text`` with break opportunities inside words of LONG_WORD characters or more."""
    if not text:
        return ""
    return _LONG_WORD.sub(_break_word, text)


@lru_cache(maxsize=1024)
def long_date(value: dt.date | None) -> str:
    """1 February 2021 (no leading zero, English month)."""
    if value is None:
        return ""
    return f"{value.day} {value:%B %Y}"


def meta_line(item: Item) -> str:
    """'BuzzFeed.News · 14 January 2020 · Photo: Reuters' (parts that are missing are left out)."""
    parts = [item.source or "", long_date(item.published)]
    if item.photo_credit:
        parts.append(f"Photo: {item.photo_credit}")
    return " · ".join(part for part in parts if part)


def groupby_runs(items: list[Item]) -> list[tuple[bool, list[Item]]]:
    """Consecutive items split into runs of (has a picture, items)."""
    runs: list[tuple[bool, list[Item]]] = []
    for item in items:
        with_picture = bool(item.image)
        if runs and runs[-1][0] == with_picture:
            runs[-1][1].append(item)
        else:
            runs.append((with_picture, [item]))
    return runs
