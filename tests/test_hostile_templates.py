"""A project template that is not UTF-8 text, or cannot be read, is named in words by every
entry point that renders: check, preview, the studio. Never a traceback, never a 500."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.project import default_templates_dir
from newsletter.studio import create_app
from tests.servers import serve_asgi

ISSUE = "issues/2021-02-01.yaml"


def _break(project: Path, how: str) -> Path:
    """A copy of a default template (one the email template includes) made unusable."""
    copy = project / "templates" / "email.mjml.j2"
    copy.parent.mkdir(exist_ok=True)
    original = (default_templates_dir() / "email.mjml.j2").read_bytes()
    if how == "latin-1":  # saved by an editor in the old Windows encoding
        copy.write_bytes(original + "<!-- café -->".encode("latin-1"))
    else:  # a picture saved under the template's name
        copy.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xd8" + original)
    return copy


@pytest.mark.parametrize("how", ["latin-1", "binary"])
@pytest.mark.parametrize("command", [["check", ISSUE], ["build", ISSUE]])
def test_the_command_names_the_template_and_what_to_do(
        sample_project: Path, how: str, command: list[str]) -> None:
    path = _break(sample_project, how)
    result = CliRunner().invoke(main, command)
    assert result.exit_code != 0
    assert not isinstance(result.exception, (UnicodeDecodeError, PermissionError)), result.output
    assert "Traceback" not in result.output
    assert str(path.relative_to(sample_project)) in result.output.replace("\n", "")
    assert "not saved as UTF-8 text" in result.output and "UTF-8" in result.output
    assert not (sample_project / "build").exists() or not any((sample_project / "build").iterdir())


def test_the_studio_preview_says_it_in_a_page_not_a_500(sample_project: Path) -> None:
    path = _break(sample_project, "latin-1")
    with serve_asgi(create_app(sample_project)) as url, \
            httpx.Client(base_url=url, timeout=30) as client:
        answer = client.get("/issues/2021-02-01/email.html")
    assert answer.status_code < 500
    assert "not saved as UTF-8 text" in answer.text and path.name in answer.text
