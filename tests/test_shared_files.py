"""Checks against files kept outside the repository (in ../shared), skipped without them."""

from __future__ import annotations

import pytest

from newsletter.issue import load_issue

from .conftest import REPO, SAMPLE_ISSUE

SEED = REPO.parent / "shared" / "seeds" / "weekly-brief-sample.txt"


def test_sample_issue_titles_come_from_the_shared_seed() -> None:
    if not SEED.is_file():
        pytest.skip(f"{SEED} is missing: the sample issue's titles cannot be compared with it")
    text = SEED.read_text(encoding="utf-8")
    missing = [item.title for item in load_issue(SAMPLE_ISSUE).items if item.title not in text]
    assert missing == []
