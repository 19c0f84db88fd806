"""Preflight: each check against a local web server, a local DNS server and SpamAssassin."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.preflight import Finding
from newsletter.preflight import links as links_module
from newsletter.preflight.accessibility import check_accessibility
from newsletter.preflight.clients import check_clients
from newsletter.preflight.domain import DKIM_SELECTOR_ENV, DNS_SERVER_ENV, check_domain
from newsletter.preflight.fetch import Fetcher
from newsletter.preflight.images import check_images
from newsletter.preflight.links import check_links
from newsletter.preflight.message import Subject
from newsletter.preflight.report import CheckResult
from newsletter.preflight.runner import prepare, run_preflight
from newsletter.preflight.size import check_size, visible
from newsletter.preflight.spam import check_spam, parse_report
from newsletter.project import Project
from tests.plugins.fake_sendgrid import populate
from tests.preflight_helpers import dns_server, point_at, web_server
from tests.tools import require_binary

ISSUE = Path("issues/2021-02-01.yaml")
TIMEOUT = 0.3


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with web_server() as url:
        yield url


@pytest.fixture
def subject(sample_project: Path) -> Subject:
    return prepare(Project(sample_project), sample_project / ISSUE)


def with_body(subject: Subject, body: str) -> Subject:
    """The subject with ``body`` as the HTML part's body (and in the text part)."""
    html = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + body, subject.html, count=1)
    return dataclasses.replace(subject, html=html)


def in_own_loop(coroutine):  # type: ignore[no-untyped-def]
    """Run ``coroutine`` to the end on a thread of its own: a browser test earlier in the
    session may have left Playwright's event loop running on this thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def run_async(check, subject: Subject, **kwargs):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with Fetcher(TIMEOUT) as fetcher:
            return await check(subject, fetcher, **kwargs)
    return in_own_loop(go())


def by_item(result) -> dict[str, list]:  # type: ignore[no-untyped-def]
    found: dict[str, list] = {}
    for finding in result.findings:
        found.setdefault(finding.item, []).append(finding)
    return found


# --- links ----------------------------------------------------------------------------------


def test_links_each_answer_gives_its_finding(subject: Subject, site: str) -> None:
    paths = ["/ok", "/moved", "/status/404", "/status/500", "/slow"]
    body = "".join(f'<p><a href="{site}{p}">A page about {p}</a></p>' for p in paths)
    result = run_async(check_links, with_body(subject, body), use_cache=False)
    found = by_item(result)
    severities = {p: {f.severity for f in found.get(site + p, []) if "https" not in f.message}
                  for p in paths}
    assert severities == {"/ok": set(), "/moved": {"warning"}, "/status/404": {"error"},
                          "/status/500": {"error"}, "/slow": {"error"}}
    moved = next(f for f in found[site + "/moved"] if "redirects" in f.message)
    assert moved.message == f"redirects to {site}/ok"
    assert "404" in found[site + "/status/404"][-1].message
    assert "time limit" in found[site + "/slow"][-1].message
    # Every link is http here: each is also a warning.
    assert all(any("not https" in f.message for f in found[site + p]) for p in paths)


def test_a_paywall_is_a_warning(subject: Subject, site: str,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(links_module, "PAYWALLED", frozenset({"127.0.0.1"}))
    body = f'<p><a href="{site}/status/403">A paywalled story</a></p>'
    result = run_async(check_links, with_body(subject, body), use_cache=False)
    paywall = [f for f in result.findings if f.item == site + "/status/403"
               and "https" not in f.message]
    assert [(f.severity, "paywall" in f.message) for f in paywall] == [("warning", True)]


def test_no_network_is_one_warning(subject: Subject) -> None:
    # The sample's links are on the internet, which the tests cannot reach; a closed
    # port stands for them so that the test is the same on a machine with a network.
    from tests.servers import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    body = "".join(f'<a href="{dead}/{n}">Story {n}</a>' for n in range(3))
    only_dead = dataclasses.replace(with_body(subject, body), html=re.sub(
        r'href="https://[^"]*"', f'href="{dead}/x"', with_body(subject, body).html))
    result = run_async(check_links, only_dead, use_cache=False)
    assert [f.severity for f in result.findings if f.severity == "error"] == []
    assert sum("no network" in f.message for f in result.findings) == 1


def test_good_links_are_cached_for_an_hour(sample_project: Path, site: str) -> None:
    point_at(sample_project, site, [f"/ok?n={n}" for n in range(8)])
    subject = prepare(Project(sample_project), sample_project / ISSUE)
    first = run_async(check_links, subject)
    cache = sample_project / ".newsletter" / "link-cache.json"
    assert not [f for f in first.findings if f.severity == "error"], first.findings
    assert f"{site}/ok?n=0" in json.loads(cache.read_text())
    assert (sample_project / ".newsletter" / ".gitignore").read_text().strip().endswith("*")
    second = run_async(check_links, subject)
    assert "checked within the hour" in second.summary


def test_the_same_story_twice_is_reported(sample_project: Path, site: str) -> None:
    point_at(sample_project, site, ["/ok?same", "/ok?n=1", "/ok?n=2", "/ok?n=3", "/ok?n=4",
                                    "/ok?n=5", "/ok?n=6", "/ok?same"])
    subject = prepare(Project(sample_project), sample_project / ISSUE)
    result = run_async(check_links, subject, use_cache=False)
    twice = [f for f in result.findings if "the same link" in f.message]
    assert [(f.field, f.message) for f in twice] == [("items[7].url",
                                                      "the same link as items[0].url")]


# --- images ---------------------------------------------------------------------------------


def test_images_each_give_their_finding(subject: Subject, site: str) -> None:
    body = (f'<img src="{site}/img/small.png" width="60" alt="Protesters in Berlin">'
            f'<img src="{site}/img/huge.png" width="400" alt="A crowd">'
            f'<img src="{site}/img/narrow.png" width="100" alt="A map">'
            f'<img src="{site}/img/wide.png" width="300" alt="A chart">')
    result = run_async(check_images, with_body(subject, body))
    found = {item: [(f.severity, f.message) for f in fs if "https" not in f.message]
             for item, fs in by_item(result).items()}
    assert not found.get(f"{site}/img/small.png")
    assert [s for s, m in found[f"{site}/img/huge.png"]] == ["error"]
    assert "MB" in found[f"{site}/img/huge.png"][0][1]
    assert found[f"{site}/img/narrow.png"] == [
        ("warning", "is 100 px wide but shown 100 px wide: blurry on phones (they need twice "
         "as many pixels)")]
    assert found[f"{site}/img/wide.png"][0][0] == "warning"
    assert "wastes readers' data" in found[f"{site}/img/wide.png"][0][1]


def test_alt_texts_that_say_nothing(subject: Subject) -> None:
    body = ('<img src="https://x.test/a.png" width="10">'
            '<img src="https://x.test/b.png" alt="IMG_2041.jpg" width="10">'
            '<img src="https://x.test/c.png" alt="image" width="10">')
    found = by_item(check_accessibility(with_body(subject, body)))
    assert found["https://x.test/a.png"][0].severity == "error"
    assert "file name" in found["https://x.test/b.png"][0].message
    assert "says nothing" in found["https://x.test/c.png"][0].message


# --- email clients ----------------------------------------------------------------------------


def test_the_default_templates_pass_at_error_level(subject: Subject) -> None:
    result = check_clients(subject)
    assert not result.skipped, result.skipped
    assert [f for f in result.findings if f.severity == "error"] == []


@pytest.mark.parametrize(("slug", "found", "not_found"), [
    ("css-left-right-top-bottom", ["top:", "x;left :", "a bottom:", "right:"],
     ["margin-top:", "padding-left:", "a-right:", "x_bottom:"]),
    ("css-border-radius", ["border-radius:", ';border-radius="'],
     ["-border-radius:", "xborder-radius:", "border-radius;"]),
    ("css-height", ["height:", " height :"], ["line-height:", "max-height:"]),
    ("css-function-min", ["min(", "width:min("], ["xmin(", "a_min("]),
    ("css-unit-calc", ["calc("], ["xcalc("]),
    ("css-sytem-ui", [" system-ui,"], ["xsystem-ui", "system-uix"]),
    ("html-srcset", [" srcset="], ["asrcset="]),
    ("css-pseudo-class-hover", ["a:hover{"], ["a::hover{", ":hover;"]),
])
def test_each_client_feature_matches_only_where_it_is_written(
        slug: str, found: list[str], not_found: list[str]) -> None:
    from newsletter.preflight.clients import data_file, load_features

    path = data_file()
    if path is None:
        pytest.skip("caniemail's data is not installed")
    feature = next(f for f in load_features(path)[0] if f.slug == slug)
    assert [text for text in found if not feature.pattern.search(text)] == []
    assert [text for text in not_found if feature.pattern.search(text)] == []
    # Led by its literal text, so re jumps between occurrences (25 times faster).
    assert feature.source[0].isalnum() or feature.source[0] == ":" or (
        feature.source.startswith("(?:") and feature.source[3].isalnum())


def test_flexbox_and_position_in_a_template_are_reported_with_their_line(
        sample_project: Path) -> None:
    from newsletter.project import default_templates_dir

    source = (default_templates_dir() / "partials" / "item.mjml.j2").read_text()
    lines = source.splitlines()
    at = next(i for i, line in enumerate(lines) if "class=\"title\"" in line)
    lines.insert(at, '  <div style="display: flex; position: relative;"><span>a</span></div>')
    target = sample_project / "templates" / "partials" / "item.mjml.j2"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n")
    result = check_clients(prepare(Project(sample_project), sample_project / ISSUE))
    found = {f.item: f for f in result.findings}
    flex, position = found["display:flex"], found["position"]
    assert flex.field.startswith(f"item.mjml.j2:{at + 1} (HTML line ")
    assert "Outlook (Windows)" in flex.message and flex.severity == "warning"
    assert position.field.startswith(f"item.mjml.j2:{at + 1}")
    assert position.severity == "error" and "Gmail (web)" in position.message


# --- accessibility ------------------------------------------------------------------------------


def test_the_default_email_is_accessible(subject: Subject) -> None:
    result = check_accessibility(subject)
    assert [f for f in result.findings if f.severity in ("error", "warning")] == []


def test_grey_on_grey_text_is_flagged(subject: Subject) -> None:
    body = ('<table><tr><td style="background-color:#aaaaaa">'
            '<p style="color:#888888">Grey words on a grey card</p></td></tr></table>')
    result = check_accessibility(with_body(subject, body))
    grey = [f for f in result.findings if f.item == "“Grey words on a grey card”"]
    assert grey and grey[0].severity == "error"
    assert "#888888 on #aaaaaa" in grey[0].message and "4.5:1" in grey[0].message


def test_lang_headings_and_link_texts(subject: Subject) -> None:
    html = subject.html.replace(' lang="en"', "", 1)
    html = re.sub(r"(<body[^>]*>)", r'\1<h4>Skipped</h4><a href="https://x.test/">click '
                  r"here</a>", html, count=1)
    result = check_accessibility(dataclasses.replace(subject, html=html))
    fields = {(f.field, f.severity) for f in result.findings}
    assert ("lang", "error") in fields
    assert any("heading level 4" in f.message for f in result.findings)
    assert any("click here" in f.message and f.severity == "warning" for f in result.findings)


# --- size ---------------------------------------------------------------------------------------


def test_subject_cut_off_on_a_phone_and_text_links(subject: Subject) -> None:
    long = dataclasses.replace(subject, rendered=dataclasses.replace(
        subject.rendered, subject="A " * 80))
    result = check_size(long)
    cut = [f for f in result.findings if f.field == "subject"]
    assert {f.item for f in cut} == {"Gmail app", "iOS Mail"}
    assert all(f.severity == "warning" and "…" in f.message for f in cut)
    assert visible("short", 255, 14) == "short"
    extra = with_body(subject, '<a href="https://x.test/only-in-html">A report</a>')
    missing = [f for f in check_size(extra).findings if "plain-text" in f.message]
    assert [f.item for f in missing] == ["https://x.test/only-in-html"]


# --- spam ---------------------------------------------------------------------------------------


def test_spamassassin_scores_the_default_message(subject: Subject) -> None:
    require_binary("spamassassin", "sudo apt-get install -y spamassassin")
    result = check_spam(subject)
    assert not result.skipped, result.skipped
    assert "points (spam from 5)" in result.summary
    assert [f for f in result.findings if f.severity == "error"] == []


def test_spam_report_rules_are_read_with_their_points() -> None:
    output = """Content analysis details:   (6.1 points, 5.0 required)

 pts rule name              description
---- ---------------------- --------------------------------------------------
 0.9 MISSING_HEADERS        Missing To: header
 5.2 HTML_IMAGE_ONLY_08     BODY: HTML: images with 0-800 bytes of words
                            and more
"""
    score, required, rules = parse_report(output) or (0, 0, [])
    assert (score, required) == (6.1, 5.0)
    assert [(r.name, r.points) for r in rules] == [("MISSING_HEADERS", 0.9),
                                                   ("HTML_IMAGE_ONLY_08", 5.2)]
    assert rules[1].description.endswith("and more")


def test_without_spamassassin_it_says_so(subject: Subject,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("newsletter.preflight.spam.shutil.which", lambda _name: None)
    result = check_spam(subject)
    assert "not installed" in result.skipped and result.severity == "ok"


# --- sender domain ------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["outbox", "sendgrid"])
def test_the_sender_domain_against_a_local_dns_server(
        sample_project: Path, monkeypatch: pytest.MonkeyPatch, transport: str) -> None:
    config = sample_project / "newsletter.toml"
    original = config.read_text()
    with dns_server() as server:
        monkeypatch.setenv(DNS_SERVER_ENV, server)
        results = {}
        for domain in ("complete.example.com", "nodmarc.example.com"):
            config.write_text(original.replace("brief@example.org", f"brief@{domain}")
                              .replace('transport = "outbox"', f'transport = "{transport}"'))
            project = Project(sample_project)
            results[domain] = check_domain(prepare(project, sample_project / ISSUE))
    assert results["complete.example.com"].findings == []
    findings = {f.field: f for f in results["nodmarc.example.com"].findings}
    assert set(findings) == {"SPF", "DMARC"}
    dmarc = findings["DMARC"]
    assert dmarc.severity == ("error" if transport == "sendgrid" else "warning")
    assert dmarc.fix == ('Add a TXT record at _dmarc.nodmarc.example.com: "v=DMARC1; p=none; '
                         'rua=mailto:dmarc@nodmarc.example.com"')
    assert findings["SPF"].fix == ('Change the TXT record at nodmarc.example.com to: "v=spf1 '
                                   'include:sendgrid.net include:_spf.example.net ~all"')


def test_the_dkim_selector_comes_from_the_config(
        sample_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = sample_project / "newsletter.toml"
    original = config.read_text().replace("brief@example.org", "brief@complete.example.com")
    assert "[sender]\n" in original
    monkeypatch.delenv(DKIM_SELECTOR_ENV, raising=False)

    def dkim(selector: str) -> list[Finding]:
        config.write_text(original.replace("[sender]\n", f'[sender]\ndkim_selector = '
                                           f'"{selector}"\n', 1))
        project = Project(sample_project)
        assert project.config.sender.dkim_selector == selector
        return [f for f in check_domain(prepare(project, sample_project / ISSUE)).findings
                if f.field == "DKIM"]

    with dns_server() as server:
        monkeypatch.setenv(DNS_SERVER_ENV, server)
        assert dkim("s1") == []  # only s1 is looked up, and it is there
        missing = dkim("mail2024, s2")
        # the environment variable overrides the config (the tests' way in)
        monkeypatch.setenv(DKIM_SELECTOR_ENV, "s2")
        overridden = dkim("mail2024")
    assert [f.message for f in missing] == [
        "no DKIM key at mail2024._domainkey.complete.example.com"]
    assert "correct dkim_selector in [sender]" in missing[0].fix
    assert overridden == []


# --- the command, and send ----------------------------------------------------------------------


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_offline_preflight_command_json_and_fail_on(sample_project: Path) -> None:
    result = run("preflight", str(ISSUE), "--offline", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [c["name"] for c in data["checks"]] == ["links", "images", "spam", "clients",
                                                    "accessibility", "size", "domain"]
    assert data["checks"][0]["skipped"].startswith("skipped: --offline")
    strict = run("preflight", str(ISSUE), "--offline", "--fail-on", "warning")
    assert strict.exit_code == 1  # the sample's subject is longer than a phone shows
    assert "Preflight:" in strict.output and "Traceback" not in strict.output


def test_send_refuses_a_broken_link_and_goes_ahead_with_force(
        sample_project: Path, site: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_PREFLIGHT_TIMEOUT", "2")
    monkeypatch.delenv("NEWSLETTER_SECRET", raising=False)
    point_at(sample_project, site, [f"/ok?n={n}" for n in range(7)] + ["/status/404"])
    populate(Project(sample_project), "weekly", 2)
    with dns_server() as server:
        monkeypatch.setenv(DNS_SERVER_ENV, server)
        refused = run("send", str(ISSUE), "--yes")
        assert refused.exit_code == 1, refused.output
        assert "Preflight found 1 error(s)" in refused.output
        assert "answers 404" in refused.output and "--force" in refused.output
        assert not (sample_project / "outbox" / "2021-02-01").exists()
        forced = run("send", str(ISSUE), "--yes", "--force")
    assert forced.exit_code == 0, forced.output
    assert "sending anyway: --force" in forced.output
    summary = " ".join(forced.output.split())  # the summary table wraps its cells
    assert re.search(r"Preflight │ 1 error\(s\), \d+ warning\(s\) \(sending anyway: --force\)",
                     summary)
    assert "details: `newsletter preflight issues/2021-02-01.yaml`" in summary
    assert len(list((sample_project / "outbox" / "2021-02-01").glob("*.eml"))) == 2


def test_send_with_offline_preflight_does_not_fetch_the_links(
        sample_project: Path, site: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSLETTER_SECRET", raising=False)
    monkeypatch.setattr("newsletter.preflight.spam.shutil.which", lambda _name: None)
    point_at(sample_project, site, ["/status/404"])  # every link broken: not looked at
    populate(Project(sample_project), "weekly", 2)
    sent = run("send", str(ISSUE), "--yes", "--offline-preflight")
    assert sent.exit_code == 0, sent.output
    summary = " ".join(sent.output.split())
    assert re.search(r"Preflight │ 0 error\(s\)", summary) and "answers 404" not in summary
    cells = " ".join(re.sub(r"[│┃]", " ", sent.output).split())  # the cell wraps its text
    assert "(links, pictures and sender domain not checked: offline)" in cells
    assert len(list((sample_project / "outbox" / "2021-02-01").glob("*.eml"))) == 2


def test_offline_run_is_quick_without_spamassassin(sample_project: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("newsletter.preflight.spam.shutil.which", lambda _name: None)
    project = Project(sample_project)
    run_preflight(project, sample_project / ISSUE, offline=True)  # warm the caches
    report = run_preflight(project, sample_project / ISSUE, offline=True)
    assert report.check("spam").skipped
    assert report.check("links").skipped.startswith("skipped: --offline")


def test_network_checks_run_inside_a_running_event_loop(sample_project: Path) -> None:
    """The studio and preview call preflight from async code; it must still check links."""
    from newsletter.preflight.runner import _network_checks

    subject = prepare(Project(sample_project), sample_project / "issues" / "2021-02-01.yaml")

    async def inside() -> tuple[CheckResult, CheckResult]:
        return _network_checks(subject, 0.5, False)

    links, images = in_own_loop(inside())
    assert "RuntimeError" not in (links.skipped or "") + (images.skipped or "")


def test_the_checked_message_is_the_one_the_outbox_writes(sample_project: Path,
                                                          tmp_path: Path) -> None:
    # Preflight makes the message in memory; an outbox send of the same body writes it
    # to a file. Apart from what the moment it was made decides (its date, Message-ID
    # and MIME boundary), the bytes are the same.
    from newsletter.delivery.requests import RequestBuilder
    from newsletter.delivery.transports import OutboxTransport
    from newsletter.preflight.message import SAMPLE_RECIPIENT, SAMPLE_SECRET

    project = Project(sample_project)
    subject = prepare(project, sample_project / ISSUE)
    config = project.config
    body = RequestBuilder(config, subject.rendered, issue_name=subject.issue.name,
                          list_slug=config.delivery.default_list or "newsletter",
                          secret=SAMPLE_SECRET).body([SAMPLE_RECIPIENT])
    OutboxTransport(project, tmp_path / "preflight").send(body)
    written = next((tmp_path / "preflight").glob("*.eml")).read_bytes()

    def timeless(eml: bytes) -> bytes:
        eml = re.sub(rb"(?m)^(Date|Message-ID): .*\r?\n", b"", eml)
        boundary = re.search(rb'boundary="([^"]+)"', eml)
        assert boundary is not None
        return eml.replace(boundary.group(1), b"BOUNDARY")

    assert timeless(subject.eml) == timeless(written)
    assert b"reader@example.org" in written and len(written) > 10_000
