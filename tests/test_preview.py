"""`newsletter preview`: the email at two widths and as text, reloading on change."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from newsletter.preview import create_app

from .servers import serve_asgi


def test_preview_serves_email_text_and_notices_changes(sample_project: Path) -> None:
    issue = sample_project / "issues" / "2021-02-01.yaml"
    with serve_asgi(create_app(sample_project, issue)) as base:
        page = httpx.get(f"{base}/").text
        assert 'id="desktop"' in page and 'id="phone"' in page
        assert "Plain text" in page and "Leaked Chinese Police Database" in page
        html = httpx.get(f"{base}/email.html")
        assert html.status_code == 200 and html.text.startswith("<!doctype html>")
        assert "East Turkistan Weekly Brief" in httpx.get(f"{base}/email.txt").text
        before = httpx.get(f"{base}/version").json()["stamp"]
        # The new text is shorter, so the stamp (mtime and size) changes even when the
        # clock has not ticked since the file was copied.
        issue.write_text(issue.read_text(encoding="utf-8").replace(
            "Leaked Chinese Police Database", "EDITED Police Database"), encoding="utf-8")
        assert httpx.get(f"{base}/version").json()["stamp"] != before
        assert "EDITED Police Database" in httpx.get(f"{base}/email.html").text
        # a new override template also counts as a change
        stamp = httpx.get(f"{base}/version").json()["stamp"]
        (sample_project / "templates" / "email.txt.j2").write_text("NEW TEXT\n")
        assert httpx.get(f"{base}/version").json()["stamp"] != stamp
        assert httpx.get(f"{base}/email.txt").text == "NEW TEXT\n"


def test_preview_shows_problems_instead_of_crashing(sample_project: Path) -> None:
    issue = sample_project / "issues" / "2021-02-01.yaml"
    issue.write_text("date: 2021-02-01\nsubject: x\nitems: []\n", encoding="utf-8")
    with serve_asgi(create_app(sample_project, issue)) as base:
        page = httpx.get(f"{base}/")
        assert page.status_code == 200
        assert "items: needs at least one item" in page.text
        assert httpx.get(f"{base}/email.html").status_code == 422


@pytest.mark.browser
def test_preview_page_reloads_in_the_browser(sample_project: Path, new_page) -> None:
    issue = sample_project / "issues" / "2021-02-01.yaml"
    with serve_asgi(create_app(sample_project, issue)) as base:
        page = new_page(width=1400)
        page.goto(f"{base}/")
        phone = page.frame_locator("#phone")
        assert phone.get_by_text("Leaked Chinese Police Database").first.is_visible()
        issue.write_text(issue.read_text(encoding="utf-8").replace(
            "Leaked Chinese Police Database", "RELOADED Police Database"), encoding="utf-8")
        page.frame_locator("#phone").get_by_text("RELOADED Police Database").first.wait_for(
            timeout=10_000)
        assert page.locator("#text").inner_text().count("RELOADED Police Database") == 1


def with_unhelpful_alt(issue: Path) -> None:
    """Give the first item a picture whose alt text says nothing (a preflight warning)."""
    text = issue.read_text(encoding="utf-8")
    first = "    url: https://theintercept.com/"
    assert first in text
    picture = "    image: https://x.test/photo.jpg\n    image_alt: image\n"
    issue.write_text(text.replace(first, picture + first, 1), encoding="utf-8")


def test_preview_runs_preflight_offline(sample_project: Path) -> None:
    issue = sample_project / "issues" / "2021-02-01.yaml"
    with_unhelpful_alt(issue)
    with serve_asgi(create_app(sample_project, issue)) as base:
        assert 'Run full preflight' in httpx.get(f"{base}/").text
        panel = httpx.get(f"{base}/preflight", timeout=60).text
    assert "https://x.test/photo.jpg" in panel and "image_alt" in panel
    # offline: the network checks are skipped, in the CLI's words
    assert "skipped: --offline (needs the network)" in panel
    assert '<td class="mark-warning">warning</td>' in panel


def test_preflight_waits_for_the_problems_to_be_fixed(sample_project: Path) -> None:
    issue = sample_project / "issues" / "2021-02-01.yaml"
    issue.write_text("date: 2021-02-01\nsubject: x\nitems: []\n", encoding="utf-8")
    with serve_asgi(create_app(sample_project, issue)) as base:
        assert "once the problems above are fixed" in httpx.get(f"{base}/preflight").text


@pytest.mark.browser
def test_preview_shows_the_preflight_panel(sample_project: Path, new_page) -> None:
    issue = sample_project / "issues" / "2021-02-01.yaml"
    with_unhelpful_alt(issue)
    with serve_asgi(create_app(sample_project, issue)) as base:
        page = new_page(width=1400)
        page.goto(f"{base}/")
        panel = page.get_by_role("region", name="Preflight")
        assert panel.get_by_role("heading", name="Preflight").is_visible()
        results = panel.get_by_role("table", name="Preflight results")
        finding = results.get_by_role("row").filter(has_text="https://x.test/photo.jpg")
        finding.wait_for(timeout=30_000)
        assert "warning" in finding.inner_text() and "image_alt" in finding.inner_text()
        assert panel.get_by_role("button", name="Run full preflight").is_enabled()
        # fixing the alt text reloads the page, and the panel with it
        issue.write_text(issue.read_text(encoding="utf-8").replace(
            "image_alt: image", "image_alt: Police officers at a checkpoint in Ürümqi"),
            encoding="utf-8")
        finding.wait_for(state="detached", timeout=30_000)
        accessibility = results.get_by_role("row").filter(has_text="Accessibility:")
        accessibility.wait_for(timeout=30_000)
        assert "✓" in accessibility.inner_text()
        assert finding.count() == 0
