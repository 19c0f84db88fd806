"""The editor's Preflight panel over real HTTP: quick checks after a save, the full run on
the button, and the full run's results kept until the email changes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from newsletter.preflight import CheckResult
from newsletter.preflight import runner as preflight_runner
from newsletter.preflight.domain import DNS_SERVER_ENV
from newsletter.preflight.message import Subject
from newsletter.studio import create_app
from newsletter.studio.preflight_panel import NOT_YET, WAITING
from tests.preflight_helpers import dns_server, point_at, web_server
from tests.servers import serve_asgi

ISSUE = "2021-02-01"


class Panel:
    """A client of a running studio, counting the times SpamAssassin was asked."""

    def __init__(self, client: httpx.Client, root: Path, scored: list[str]) -> None:
        self.client, self.root, self.scored = client, root, scored
        page = client.get("/")
        self.token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)

    def quick(self) -> str:
        answer = self.client.get(f"/issues/{ISSUE}/preflight")
        assert answer.status_code == 200
        return answer.text

    def full(self) -> str:
        answer = self.client.post(f"/issues/{ISSUE}/preflight",
                                  data={"csrf_token": self.token})
        assert answer.status_code == 200
        return answer.text


@pytest.fixture
def panel(sample_project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Panel]:
    scored: list[str] = []

    def fake_spam(subject: Subject) -> CheckResult:
        scored.append(subject.subject_line)
        return CheckResult("spam", "Spam score (SpamAssassin)", summary="0.1 points")

    # the studio runs in this process (on a thread): SpamAssassin itself is tested elsewhere
    monkeypatch.setattr(preflight_runner, "check_spam", fake_spam)
    monkeypatch.setenv("NEWSLETTER_PREFLIGHT_TIMEOUT", "2")
    with web_server() as site, dns_server() as dns:
        monkeypatch.setenv(DNS_SERVER_ENV, dns)
        point_at(sample_project, site, [f"/ok?n={n}" for n in range(7)] + ["/status/404"])
        with serve_asgi(create_app(sample_project)) as url, \
                httpx.Client(base_url=url, timeout=60) as client:
            yield Panel(client, sample_project, scored)


def test_after_a_save_only_the_quick_checks_run(panel: Panel) -> None:
    editor = panel.client.get(f"/issues/{ISSUE}").text
    assert 'hx-trigger="load, studio-saved from:body"' in editor
    html = panel.quick()
    assert '<h2 id="preflight-heading">Preflight</h2>' in html
    assert '<table aria-label="Preflight results">' in html
    assert html.count(NOT_YET) == 4  # links, images, spam, domain
    assert "--offline" not in html  # the CLI's words, not the studio's
    assert "Press <strong>Run full preflight</strong> before you send." in html
    assert ">Run full preflight</button>" in html
    assert panel.scored == []  # no SpamAssassin after a save


def test_a_finding_shows_on_its_item_and_field_in_the_cli_s_words(panel: Panel) -> None:
    issue = panel.root / "issues" / f"{ISSUE}.yaml"
    text = issue.read_text(encoding="utf-8")
    first = re.search(r"(?m)^    url: .*$", text).group(0)
    issue.write_text(text.replace(
        first, "    image: https://x.test/photo.jpg\n    image_alt: image\n" + first, 1),
        encoding="utf-8")
    html = panel.quick()
    assert "https://x.test/photo.jpg" in html and "image_alt" in html
    assert '<td class="mark-warning">warning</td>' in html


def test_the_button_runs_everything_and_the_result_is_kept_until_the_email_changes(
        panel: Panel) -> None:
    full = panel.full()
    assert len(panel.scored) == 1
    assert '<td class="mark-error">error</td>' in full
    assert "answers 404" in full and "items[7].url" in full
    assert NOT_YET not in full
    # the next save of the same email: the full run's findings, without running it again
    again = panel.quick()
    assert "answers 404" in again and "as checked at" in again
    assert len(panel.scored) == 1
    # a changed email: its links have not been checked
    issue = panel.root / "issues" / f"{ISSUE}.yaml"
    issue.write_text(issue.read_text(encoding="utf-8").replace("/status/404", "/ok?n=99"),
                     encoding="utf-8")
    changed = panel.quick()
    assert "answers 404" not in changed and changed.count(NOT_YET) == 4


def test_the_full_run_needs_the_studio_s_own_form(panel: Panel) -> None:
    refused = panel.client.post(f"/issues/{ISSUE}/preflight", data={"csrf_token": "forged"})
    assert refused.status_code == 403 and "<table" not in refused.text
    assert panel.scored == []


def test_preflight_waits_for_the_errors_to_be_fixed(panel: Panel) -> None:
    issue = panel.root / "issues" / f"{ISSUE}.yaml"
    issue.write_text("date: 2021-02-01\nsubject: x\nitems: []\n", encoding="utf-8")
    for html in (panel.quick(), panel.full()):
        assert WAITING in html
        assert "<table" not in html and "Run full preflight" not in html


def test_preflight_answers_only_to_the_studio_s_own_host(panel: Panel) -> None:
    answer = panel.client.get(f"/issues/{ISSUE}/preflight",
                              headers={"host": "attacker.example:8700"})
    assert answer.status_code == 421 and "<table" not in answer.text
    assert panel.client.get("/issues/no-such-issue/preflight").status_code == 404


def test_with_a_spamd_the_spam_score_runs_after_each_save(
        panel: Panel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("newsletter.studio.preflight_panel.spamd_configured", lambda: True)
    html = panel.quick()
    assert len(panel.scored) == 1  # cheap through spamc: part of the quick checks
    assert html.count(NOT_YET) == 3  # links, images, domain
    assert "Links, pictures and the sender domain are checked only when you ask" in html
