"""Markdown summaries, as safe HTML for the email and as wrapped plain text for its text part."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markupsafe import Markup

# Raw HTML in Markdown is shown as text, never passed through.
_markdown = MarkdownIt("commonmark", {"html": False, "typographer": False})


@lru_cache(maxsize=4096)
def _markdown_tokens(source: str) -> tuple[Any, ...]:
    # Each summary is shown twice (HTML and text part), so parse it once.
    return tuple(_markdown.parse(source))


def markdown_html(source: str | None) -> Markup:
    """Markdown to safe HTML (raw HTML in the source is escaped)."""
    if not source:
        return Markup("")
    tokens = list(_markdown_tokens(source))
    return Markup(_markdown.renderer.render(tokens, _markdown.options, {}).strip())


def markdown_text(source: str | None, width: int = 72) -> str:
    """Markdown to plain text: paragraphs kept, links written as 'text (url)'."""
    if not source:
        return ""
    paragraphs: list[str] = []
    for token in _markdown_tokens(source):
        if token.type != "inline":
            continue
        words: list[str] = []
        href: str | None = None
        for child in token.children or []:
            if child.type == "link_open":
                href = str(child.attrs.get("href", ""))
            elif child.type == "link_close":
                if href:
                    words.append(f" ({href})")
                href = None
            elif child.type in ("softbreak", "hardbreak"):
                words.append(" ")
            elif child.content:
                words.append(child.content)
        paragraphs.append(wrap("".join(words), width))
    return "\n\n".join(paragraphs)


def wrap(text: str, width: int) -> str:
    """``text`` filled to ``width`` columns, words never broken (the ``wrap`` filter)."""
    import textwrap

    return textwrap.fill(
        " ".join(text.split()), width=width, break_long_words=False, break_on_hyphens=False
    )
