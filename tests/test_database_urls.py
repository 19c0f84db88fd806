"""Database URLs the store cannot use: one plain line naming the ones it can, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import main

PASSWORD = "hunter2-Secret"


@pytest.mark.parametrize("url", [
    f"mysql://ann:{PASSWORD}@db.example/news",
    f"mysql+pymysql://ann:{PASSWORD}@db.example/news",
    "foo://",
    f"foo://:{PASSWORD}@host",
    "garbage",
    f"postgresql//ann:{PASSWORD}@db.example/news",
    f"ann:{PASSWORD}@db.example",
    "://",
    f"postgresql+asyncpg://ann:{PASSWORD}@db.example/news",
    f"postgresql+psycopg2://ann:{PASSWORD}@db.example/news",
    f"oracle://ann:{PASSWORD}@db.example/news",
    "sqlite://",
    "sqlite:///:memory:",
    f"mysql://ann:{PASSWORD}:more@weird@db.example/news",
])
def test_an_unsupported_database_url_is_one_plain_error(
    sample_project: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", url)
    result = CliRunner().invoke(main, ["lists"])
    output = result.output  # stdout and stderr
    assert result.exit_code == 1, output
    assert isinstance(result.exception, SystemExit), output  # no escaped exception
    assert "Traceback" not in output
    assert PASSWORD not in output and "hunter2" not in output
    assert "sqlite:///" in output and "postgresql://" in output  # what would work
    assert output.count("Error:") == 1


def test_a_supported_url_still_works(sample_project: Path, monkeypatch: pytest.MonkeyPatch,
                                     tmp_path: Path) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", f"sqlite:///{tmp_path / 'other.db'}")
    result = CliRunner().invoke(main, ["lists"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "other.db").is_file()
