"""A sign-up form on the organisation's own website: the embeddable snippet, across origins."""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from newsletter.cli import main
from newsletter.tokens import sign
from tests.servers import serve_asgi
from tests.test_web import Service, body_text, link_path, start_service


@dataclass
class Sites:
    service: Service
    website: str  # the organisation's own site, another origin
    page: dict[str, str]  # path -> HTML the website serves


@pytest.fixture
def sites(sample_project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sites]:
    page: dict[str, str] = {}

    async def serve_page(request):  # type: ignore[no-untyped-def]
        return HTMLResponse(page.get(request.url.path, "Not found"))

    website_app = Starlette(routes=[Route("/{path:path}", serve_page)])
    with serve_asgi(website_app) as website:
        toml = sample_project / "newsletter.toml"
        toml.write_text(toml.read_text(encoding="utf-8")
                        + f'\n[web]\nallowed_origins = ["{website}"]\n', encoding="utf-8")
        for service in start_service(sample_project, monkeypatch, verifier=None):
            yield Sites(service, website, page)


def _snippet(sites: Sites, slug: str = "alerts") -> str:
    """The snippet as /subscribe/SLUG/embed shows it, pointing at this test's service."""
    shown = sites.service.client.get(f"/subscribe/{slug}/embed")
    assert shown.status_code == 200
    start = shown.text.index("&lt;form")
    end = shown.text.index("&lt;/form&gt;") + len("&lt;/form&gt;")

    code = html.unescape(shown.text[start:end])
    return code.replace("https://news.example.org", sites.service.url)


@pytest.mark.browser
def test_sign_up_from_another_website_in_a_real_browser(sites: Sites, new_page) -> None:
    sites.page["/join.html"] = (
        "<!doctype html><html lang=en><title>Our site</title><h1>Join us</h1>"
        + _snippet(sites) + "</html>")
    page = new_page()
    page.goto(f"{sites.website}/join.html")
    page.get_by_label("Email address").fill("fan@example.org")
    page.get_by_role("button", name="Subscribe to Alerts").click()
    page.get_by_role("heading", name="Thank you").wait_for()
    assert "email with a link to confirm" in page.content()
    # Alerts is a single opt-in list, but embedded sign-ups always confirm first.
    assert sites.service.status("fan@example.org", "alerts") == "unconfirmed"
    [confirmation] = sites.service.outbox(wait_for=1)
    assert confirmation["To"] == "fan@example.org"
    assert "/confirm/" in link_path(body_text(confirmation), "confirm")


def _post(sites: Sites, origin: str, **fields: str) -> httpx.Response:
    return sites.service.client.post("/subscribe/alerts", headers={"Origin": origin},
                                     data={"email": "x@example.org", **fields})


def test_an_origin_not_listed_is_refused_in_plain_words(sites: Sites) -> None:
    token = _snippet(sites).split('name="embed_token" value="')[1].split('"')[0]
    answer = _post(sites, "https://evil.example", embed_token=token)
    assert answer.status_code == 403
    assert "not accepted" in answer.text and "allowed_origins" in answer.text
    assert "expired" not in answer.text
    assert sites.service.status("x@example.org", "alerts") is None


def test_a_forged_or_expired_snippet_token_is_refused(sites: Sites) -> None:
    old = sign(sites.service.secret, "embed", {"l": "alerts"}, max_age=-1)
    stranger = sign(b"another-secret-0123456789", "embed", {"l": "alerts"})
    for token in (old, "forged.token", stranger):
        answer = _post(sites, sites.website, embed_token=token)
        assert answer.status_code == 403 and "out of date" in answer.text
    other_list = sign(sites.service.secret, "embed", {"l": "weekly"}, max_age=60)
    assert _post(sites, sites.website, embed_token=other_list).status_code == 403
    assert sites.service.status("x@example.org", "alerts") is None


def test_honeypot_on_the_embedded_form_does_nothing(sites: Sites) -> None:
    token = _snippet(sites).split('name="embed_token" value="')[1].split('"')[0]
    answer = _post(sites, sites.website, embed_token=token, website="spam")
    assert answer.status_code == 200
    assert sites.service.status("x@example.org", "alerts") is None


def test_cors_for_json_only_for_allowed_origins(sites: Sites) -> None:
    client = sites.service.client
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    ok = client.options("/subscribe/alerts", headers={"Origin": sites.website, **preflight})
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == sites.website
    refused = client.options("/subscribe/alerts",
                             headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in refused.headers
    answer = client.post("/subscribe/alerts", json={"email": "js@example.org"},
                         headers={"Origin": sites.website})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == sites.website
    assert sites.service.status("js@example.org", "alerts") == "unconfirmed"
    evil = client.post("/subscribe/alerts", json={"email": "js2@example.org"},
                       headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403 and "access-control-allow-origin" not in evil.headers


def test_lists_embed_prints_the_snippet(sample_project: Path, monkeypatch) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET", "embed-test-secret-0123456789abcdef")
    runner = CliRunner()
    runner.invoke(main, ["lists", "create", "alerts", "--name", "Alerts"], catch_exceptions=False)
    result = runner.invoke(main, ["lists", "embed", "alerts"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert 'action="https://news.example.org/subscribe/alerts"' in result.output
    assert 'name="embed_token"' in result.output and 'name="website"' in result.output
    assert "allowed_origins" in result.output  # none set yet: says how
    missing = runner.invoke(main, ["lists", "embed", "nope"], catch_exceptions=False)
    assert missing.exit_code != 0 and "Traceback" not in missing.output
