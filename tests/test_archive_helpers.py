"""Issue files for the archive tests (this module has no tests of its own)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

HOSTILE_TITLE = '<script>window.pwned = 1</script> Tom & <b>Jerry</b>'
HOSTILE_SUMMARY = (
    'Raw HTML stays text: <img src="x" onerror="window.pwned = 2"> and '
    "<script>window.pwned = 3</script> & <em>more</em>."
)
HOSTILE_SUBJECT = '<script>window.pwned = 4</script> "Quotes" & <i>tags</i>'


def write_issue(
    root: Path,
    date: str,
    subject: str,
    summaries: list[str] | None = None,
    *,
    titles: list[str] | None = None,
    draft: bool = False,
    preheader: str | None = None,
    name: str | None = None,
) -> Path:
    """Write issues/NAME.yaml (NAME defaults to the date); strings are JSON-quoted YAML."""
    summaries = summaries or ["An ordinary summary of an ordinary story."]
    titles = titles or [f"Story {n} of {date}" for n in range(1, len(summaries) + 1)]
    lines = [
        f"date: {date}",
        f"subject: {json.dumps(subject)}",
        f"preheader: {json.dumps(preheader or f'The week of {date}.')}",
        "intro: Good morning.",
    ]
    if draft:
        lines.append("draft: true")
    lines.append("items:")
    for number, (title, summary) in enumerate(zip(titles, summaries, strict=True), 1):
        lines += [
            f"  - title: {json.dumps(title)}",
            f"    url: https://example.org/{date}/story-{number}",
            "    source: Example Times",
            f"    published: {(dt.date.fromisoformat(date) - dt.timedelta(days=1)).isoformat()}",
            f"    summary: {json.dumps(summary)}",
        ]
    path = root / "issues" / f"{name or date}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
