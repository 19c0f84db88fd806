"""Every page the archive and the web service produce is valid HTML: the W3C Nu HTML
checker (vnu-jar, run with Java) reports 0 errors. The web pages are fetched from the
real service along the sign-up, confirm and unsubscribe path; the emails it sends are
checked too, and which of them offer one-click unsubscribe."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.archive import build_archive
from newsletter.project import Project

from .test_archive_helpers import HOSTILE_SUBJECT, HOSTILE_SUMMARY, HOSTILE_TITLE, write_issue
from .test_web import Service, body_text, form_token, link_path, start_service
from .tools import require_vnu


def validate(files: list[Path]) -> list[str]:
    """The Nu checker's errors for ``files``, one line each: file: message (extract)."""
    java, jar = require_vnu()
    done = subprocess.run(
        [java, "-jar", str(jar), "--errors-only", "--format", "json", *map(str, files)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    report = json.loads(done.stderr or done.stdout or '{"messages": []}')
    return [f"{Path(m.get('url', '')).name}: {m.get('message')} ({m.get('extract', '')!r})"
            for m in report["messages"] if m.get("type") in ("error", "non-document-error")]


@pytest.fixture
def service(sample_project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    yield from start_service(sample_project, monkeypatch, verifier=None)


def test_every_archive_page_is_valid_html(sample_project: Path, tmp_path: Path) -> None:
    write_issue(sample_project, "2022-03-07", HOSTILE_SUBJECT, [HOSTILE_SUMMARY, "Plain."],
                titles=[HOSTILE_TITLE, "Another story"])
    build_archive(Project(sample_project), sample_project / "site")
    pages = sorted((sample_project / "site").rglob("*.html"))
    names = {str(p.relative_to(sample_project / "site")) for p in pages}
    assert {"index.html", "404.html", "search/index.html", "issues/2021-02-01/index.html",
            "issues/2022-03-07/index.html"} <= names
    assert validate(pages) == []


def test_every_web_page_and_email_is_valid_html(service: Service, tmp_path: Path) -> None:
    client = service.client
    pages: dict[str, str] = {}

    def keep(name: str, response_text: str) -> None:
        pages[name] = response_text

    keep("subscribe", client.get("/subscribe/weekly").text)
    token = form_token(client)
    answer = client.post("/subscribe/weekly", data={
        "email": "reader@example.org", "name": "Rea", "csrf_token": token, "website": ""})
    keep("check_inbox", answer.text)
    bad = client.post("/subscribe/weekly", data={
        "email": "not-an-address", "csrf_token": form_token(client), "website": ""})
    keep("subscribe_with_error", bad.text)
    [confirmation] = service.outbox(wait_for=1)
    confirm_path = link_path(body_text(confirmation), "confirm")
    keep("confirm", client.get(confirm_path).text)
    keep("confirmed", client.post(confirm_path).text)
    [_, welcome] = service.outbox(wait_for=2)
    unsubscribe_path = link_path(body_text(welcome), "unsubscribe")
    keep("unsubscribe", client.get(unsubscribe_path).text)
    keep("unsubscribed", client.post(unsubscribe_path).text)
    keep("bad_link", client.get("/unsubscribe/not-a-token").text)
    keep("no_such_list", client.get("/subscribe/nope").text)
    for name, message in (("confirm_email", confirmation), ("welcome_email", welcome)):
        keep(name, message.get_body(("html",)).get_content())

    for name in ("confirm", "unsubscribe"):
        assert not re.search(r"action=\"\"", pages[name])
    files = []
    for name, html in pages.items():
        assert html.lstrip().lower().startswith("<!doctype html>"), name
        path = tmp_path / f"{name}.html"
        path.write_text(html, encoding="utf-8")
        files.append(path)
    assert validate(files) == []
    # The welcome email offers one-click unsubscribe; the confirmation (transactional,
    # nobody is subscribed yet) does not.
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"{unsubscribe_path}>" in welcome["List-Unsubscribe"]
    assert confirmation["List-Unsubscribe"] is None


def test_the_validator_finds_errors(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text('<!doctype html><html lang="en"><title>x</title><form action=""></form>',
                    encoding="utf-8")
    assert any("action" in error for error in validate([page]))

