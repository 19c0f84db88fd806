"""Exports for spreadsheets: the per-story table as CSV, safe to open in Excel."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from .figures import Story

# A cell starting with one of these is run as a formula by spreadsheet programs.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """``value`` as text that a spreadsheet shows as text, never runs as a formula."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def stories_csv(stories: Sequence[Story]) -> str:
    """story, title, url, readers, clicks: one row per story, most-read first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["story", "title", "url", "readers", "clicks"])
    for story in stories:
        writer.writerow([story.index or "", safe_cell(story.title), safe_cell(story.url),
                         story.clickers, story.clicks])
    return buffer.getvalue()
