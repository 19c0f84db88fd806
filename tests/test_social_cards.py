"""The archive's social-media card: a large picture card only when an item has a picture.

(Split from test_archive's either-or check, so each case asserts one behaviour.)
"""

from __future__ import annotations

from pathlib import Path

import lxml.html

from newsletter.archive import build_archive
from newsletter.project import Project

from .test_archive_helpers import write_issue


def card(sample_project: Path, images: list[tuple[str, str] | None]) -> str:
    """The twitter:card of the page of an issue whose items have ``images``."""
    write_issue(sample_project, "2021-02-08", "The second week", ["A story."] * len(images),
                images=images)
    project = Project(sample_project)
    build_archive(project, project.root / "site", search=False)
    page = lxml.html.fromstring(
        (project.root / "site" / "issues" / "2021-02-08" / "index.html").read_bytes())
    return str(page.cssselect('meta[name="twitter:card"]')[0].get("content"))


def test_an_issue_with_a_picture_gets_the_large_picture_card(sample_project: Path) -> None:
    assert card(sample_project, [None, ("https://example.org/a.jpg", "A crowd")]) \
        == "summary_large_image"


def test_an_issue_without_pictures_gets_the_small_logo_card(sample_project: Path) -> None:
    assert card(sample_project, [None, None]) == "summary"
