"""Add from link: `newsletter add` for the studio, and what to tell the user about it."""

from __future__ import annotations

from pathlib import Path

from ..issue_editor import add_items
from .forms import LABELS


def _field(note: str) -> str:
    """'image_alt: ...' -> 'Image description: ...' (the form's words for the fields)."""
    name, sep, rest = note.partition(": ")
    return f"{LABELS.get(name, name)}: {rest}" if sep and name in LABELS else note


def add_from_links(path: Path, text: str) -> tuple[str, list[str]]:
    """Add an item for each link in ``text``; (kind of message, its lines) for the page."""
    urls = [part for part in text.split() if part]
    if not urls:
        return "error", ["Paste one or more links, one per line, then press Add from link."]
    report = add_items(path, urls)
    lines: list[str] = []
    for added in report.added:
        title = added.fields.get("title", "")
        lines.append(f"Added item {added.position}: {title}")
        missing = [LABELS.get(name, name) for name in added.placeholders]
        if missing:
            lines.append(f"  Still to write in item {added.position}: {', '.join(missing)}.")
        lines.extend(f"  {_field(note)}" for note in added.notes)
    lines.extend(f"Skipped {s.url}: {s.reason}" for s in report.skipped)
    lines.extend(f"Could not add {f.url}: {f.reason}" for f in report.failed)
    lines.extend(report.notes)
    return ("error" if report.failed and not report.added else "info"), lines
