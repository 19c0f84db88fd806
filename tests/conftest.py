"""Shared fixtures. Each area's fixtures live in tests/plugins/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.plugins.browser",
    "tests.plugins.determinism",
    "tests.plugins.database",
    "tests.plugins.fake_sendgrid",
]

REPO = Path(__file__).resolve().parent.parent
SAMPLE_ISSUE = REPO / "issues" / "2021-02-01.yaml"


@pytest.fixture
def sample_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the repository's sample newsletter in a temporary folder (made the cwd)."""
    root = tmp_path / "sample"
    root.mkdir()
    shutil.copyfile(REPO / "newsletter.toml", root / "newsletter.toml")
    for folder in ("issues", "templates", "subscribers"):
        shutil.copytree(
            REPO / folder, root / folder, ignore=shutil.ignore_patterns("*.db", "*.db-*")
        )
    monkeypatch.chdir(root)
    monkeypatch.delenv("NEWSLETTER_DATABASE_URL", raising=False)
    return root
