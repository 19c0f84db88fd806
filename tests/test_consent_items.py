"""Issue 12, items 12 and 13: the default list's opt-in, and `subscribers forget`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.project import Project
from newsletter.store import find_list, open_database


@pytest.fixture
def run(project_database_url: str):
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True, input: str | None = None):
        result = runner.invoke(main, list(args), catch_exceptions=False, input=input)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke


def _db(root: Path):
    return open_database(Project(root).database_url)


def test_the_default_list_is_created_by_the_store_as_double_opt_in(
        run, sample_project: Path) -> None:
    run("subscribers", "add", "ann@example.org")  # first use of [delivery] default_list
    db = _db(sample_project)
    with db.transaction() as session:
        weekly = find_list(session, "weekly")
        assert weekly is not None and weekly.double_opt_in
    db.dispose()
