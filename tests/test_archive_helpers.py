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
    intro: str = "Good morning.",
    sections: list[str | None] | None = None,
    images: list[tuple[str, str] | None] | None = None,
) -> Path:
    """Write issues/NAME.yaml (NAME defaults to the date); strings are JSON-quoted YAML.

    ``sections`` and ``images`` give each item its section heading and its
    ``(image, image_alt)`` picture; None leaves that out for the item.
    """
    summaries = summaries or ["An ordinary summary of an ordinary story."]
    titles = titles or [f"Story {n} of {date}" for n in range(1, len(summaries) + 1)]
    sections = sections or [None] * len(summaries)
    images = images or [None] * len(summaries)
    lines = [
        f"date: {date}",
        f"subject: {json.dumps(subject)}",
        f"preheader: {json.dumps(preheader or f'The week of {date}.')}",
        f"intro: {json.dumps(intro)}",
    ]
    if draft:
        lines.append("draft: true")
    lines.append("items:")
    items = zip(titles, summaries, sections, images, strict=True)
    for number, (title, summary, section, image) in enumerate(items, 1):
        lines += [
            f"  - title: {json.dumps(title)}",
            f"    url: https://example.org/{date}/story-{number}",
            "    source: Example Times",
            f"    published: {(dt.date.fromisoformat(date) - dt.timedelta(days=1)).isoformat()}",
            f"    summary: {json.dumps(summary)}",
        ]
        if section is not None:
            lines.append(f"    section: {json.dumps(section)}")
        if image is not None:
            src, alt = image
            lines += [f"    image: {json.dumps(src)}", f"    image_alt: {json.dumps(alt)}"]
    path = root / "issues" / f"{name or date}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
