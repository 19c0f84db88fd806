"""Rendering: Jinja2 → MJML → mjml-python → premailer, with premailer's traps covered."""

from __future__ import annotations

import http.server
import logging
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.issue import load_issue
from newsletter.mjml_html import mjml_to_html
from newsletter.personalization import HTML_TOKENS, TEXT_TOKENS, personalize, substitutions
from newsletter.project import Project
from newsletter.render import render_email

from .conftest import REPO

FULL = """\
date: 2026-01-05
subject: Everything at once
preheader: PREHEADER-MARKER a line for the inbox
intro: |
  Hello **world**, see [our site](https://example.org/).
items:
  - title: With a picture
    url: https://example.org/a
    source: The Example Times
    published: 2026-01-02
    photo_credit: Reuters
    image: https://example.org/a.jpg
    image_alt: A crowd outside parliament
    section: In the press
    summary: |
      First paragraph.

      Second paragraph with <script>alert("x")</script> and <b>tags</b>.
  - title: "Title with <i>markup</i> & ampersand"
    url: https://example.org/b?x=1&y=2
    section: From us
    summary: Plain.
"""

MJML_BIN = REPO / "bench" / "node_modules" / ".bin" / "mjml"


@pytest.fixture
def full_issue(sample_project: Path) -> Path:
    path = sample_project / "issues" / "2026-01-05.yaml"
    path.write_text(FULL, encoding="utf-8")
    return path


def render(root: Path, path: Path, **kwargs):  # type: ignore[no-untyped-def]
    project = Project(root)
    return render_email(project, load_issue(path, project.issue_files()), **kwargs)


def test_doctype_survives_premailer(sample_project: Path) -> None:
    rendered = render(sample_project, sample_project / "issues" / "2021-02-01.yaml")
    assert rendered.html.startswith("<!doctype html>")
    assert rendered.html.count("<!doctype") == 1
    assert '<html lang="en"' in rendered.html


def test_important_kept_inside_media_queries(full_issue: Path, sample_project: Path) -> None:
    html = render(sample_project, full_issue).html
    media = re.findall(r"@media[^{]*\{(.*?\})\s*\}", html, flags=re.DOTALL)
    columns = [rule for rule in media if ".mj-column-per-36" in rule]
    assert columns, "the two-column item layout needs its responsive rule"
    assert "width:36% !important" in columns[0].replace(": ", ":")


def test_css_is_inlined(sample_project: Path) -> None:
    html = render(sample_project, sample_project / "issues" / "2021-02-01.yaml").html
    # .more a { color: accent; font-weight: 700 } from mj-style, inlined on the link
    link = r'<a href="[^"]+" style="[^"]*font-weight:\s*700[^"]*">Read more<span class="context"'
    assert re.search(link, html)


def test_same_input_gives_same_bytes(sample_project: Path, tmp_path: Path) -> None:
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / f"out{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run(
            [sys.executable, "-m", "newsletter", "build", "issues/2021-02-01.yaml", "-o",
             str(out)],
            cwd=sample_project, env=env, check=True, capture_output=True,
        )
        outputs.append([(out / f"2021-02-01{s}").read_bytes() for s in (".html", ".txt", ".eml")])
    assert outputs[0] == outputs[1]
    assert len(outputs[0][0]) > 10_000


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        type(self).hits.append(self.path)
        body = b"body { color: red; }"
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def css_server() -> Iterator[str]:
    _Recorder.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_rendering_never_touches_the_network(
    sample_project: Path, css_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A template that imports a stylesheet, links a web font and a stylesheet:
    # cssutils would follow the @import and premailer would fetch the links.
    head = (
        f'<mj-font name="Roboto" href="{css_server}/font.css" />'
        f'<mj-style>@import url({css_server}/import.css); a {{ color: red; }}</mj-style>'
        f'<mj-raw><link rel="stylesheet" href="{css_server}/link.css"></mj-raw>'
    )
    mjml = f'<mjml><mj-head>{head}</mj-head><mj-body><mj-section><mj-column><mj-text ' \
        'font-family="Roboto, Arial">Hi <a href="https://example.org/">x</a></mj-text>' \
        '</mj-column></mj-section></mj-body></mjml>'
    connections: list[object] = []
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> None:
        connections.append(address)
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    html = mjml_to_html(mjml)
    assert _Recorder.hits == []
    assert connections == []
    assert "@import" not in html and "link.css" not in html
    assert "fonts.googleapis.com" not in html
    # the rule after the @import still applies
    assert "color:red" in html.replace(" ", "")


def test_no_cssutils_warnings_for_mso_properties(
    sample_project: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mjml = ('<mjml><mj-head><mj-style>td { mso-line-height-rule: exactly; '
            'mso-table-lspace: 0pt; }</mj-style></mj-head><mj-body><mj-section><mj-column>'
            '<mj-text>x</mj-text></mj-column></mj-section></mj-body></mjml>')
    html = mjml_to_html(mjml)
    assert "mso-line-height-rule" in html
    captured = capfd.readouterr()
    assert "mso" not in captured.err and "WARNING" not in captured.err
    assert [r for r in caplog.records if r.name.startswith("CSSUTILS")] == []
    rendered = render(sample_project, sample_project / "issues" / "2021-02-01.yaml")
    assert rendered.html
    assert capfd.readouterr().err == ""


def test_raw_html_in_markdown_is_shown_as_text(full_issue: Path, sample_project: Path) -> None:
    rendered = render(sample_project, full_issue)
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert" in rendered.html
    assert "&lt;b&gt;tags&lt;/b&gt;" in rendered.html
    assert "Title with &lt;i&gt;markup&lt;/i&gt; &amp; ampersand" in rendered.html
    assert "Hello <strong>world</strong>" in rendered.html
    assert "https://example.org/b?x=1&amp;y=2" in rendered.html
    # the text part is text: nothing escaped, no tags added
    assert '<script>alert("x")</script>' in rendered.text
    assert "Title with <i>markup</i> & ampersand" in rendered.text
    assert "our site (https://example.org/)" in rendered.text


def test_text_part_comes_from_its_own_template(sample_project: Path) -> None:
    path = sample_project / "issues" / "2021-02-01.yaml"
    before = render(sample_project, path)
    (sample_project / "templates" / "email.txt.j2").write_text(
        "CUSTOM TEXT {{ issue.subject }}\n", encoding="utf-8"
    )
    after = render(sample_project, path)
    assert after.text.startswith("CUSTOM TEXT Weekly Brief:")
    assert after.html == before.html
    assert "<" not in before.text.replace("<i>", "")
    for item in load_issue(path).items:
        assert item.url in before.text


def test_project_templates_override_defaults_by_name(sample_project: Path) -> None:
    partials = sample_project / "templates" / "partials"
    partials.mkdir(parents=True)
    (partials / "footer.mjml.j2").write_text(
        "<mj-section><mj-column><mj-text>OUR OWN FOOTER {{ config.postal_address }}"
        "</mj-text></mj-column></mj-section>",
        encoding="utf-8",
    )
    html = render(sample_project, sample_project / "issues" / "2021-02-01.yaml").html
    assert "OUR OWN FOOTER Example Rights Network" in html
    assert "Leaked Chinese Police Database" in html  # the rest is still the default


def test_personal_parts_are_tokens_when_sending(sample_project: Path) -> None:
    rendered = render(sample_project, sample_project / "issues" / "2021-02-01.yaml",
                      for_sending=True)
    assert f'href="{HTML_TOKENS.unsubscribe_url}"' in rendered.html
    assert HTML_TOKENS.greeting in rendered.html and TEXT_TOKENS.greeting in rendered.text
    values = substitutions('<b>Ann</b> & Co', "https://news.example.org/unsubscribe/T0K",
                           "https://news.example.org/issues/2021-02-01/")
    html = personalize(rendered.html, values)
    text = personalize(rendered.text, values)
    assert "Hello &lt;b&gt;Ann&lt;/b&gt;," in html
    assert "Hello <b>Ann</b>," in text
    assert 'href="https://news.example.org/unsubscribe/T0K"' in html
    assert "Unsubscribe: https://news.example.org/unsubscribe/T0K" in text
    assert "[[nl:" not in html + text


@pytest.mark.skipif(not MJML_BIN.exists(), reason="run `make test` (installs the mjml compiler)")
def test_default_templates_are_valid_mjml(full_issue: Path, sample_project: Path,
                                          tmp_path: Path) -> None:
    """MRML does not validate MJML; the official compiler does, strictly."""
    sources = {
        "sample": render(sample_project, sample_project / "issues" / "2021-02-01.yaml").mjml,
        "full": render(sample_project, full_issue).mjml,
        # a control, so this test can fail: an attribute mj-text does not have
        "broken": "<mjml><mj-body><mj-section><mj-column><mj-text colour=\"red\">x</mj-text>"
        "</mj-column></mj-section></mj-body></mjml>",
    }
    results = {}
    for name, source in sources.items():
        path = tmp_path / f"{name}.mjml"
        path.write_text(source, encoding="utf-8")
        process = subprocess.run(
            [str(MJML_BIN), str(path), "--config.validationLevel=strict", "-s"],
            capture_output=True, text=True, timeout=120,
        )
        results[name] = (process.returncode, process.stderr)
    assert results["broken"][0] != 0
    assert results["sample"] == (0, ""), results["sample"]
    assert results["full"] == (0, ""), results["full"]


def test_init_copies_no_templates_and_templates_copy_works_after_it(tmp_path: Path) -> None:
    """A new project uses the package's templates (and their later fixes) until one is
    copied to be changed; `templates copy` then gives the package's file as it is."""
    from newsletter.project import copy_template, default_templates_dir, init_project

    created = init_project(tmp_path / "fresh")
    assert not created.templates_dir.exists()
    for name in ("email.mjml.j2", "partials/footer.mjml.j2"):
        copied = copy_template(created, name)
        assert copied.read_bytes() == (default_templates_dir() / name).read_bytes()


def test_ordinary_text_survives_personalization(sample_project: Path) -> None:
    path = sample_project / "issues" / "2021-02-01.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "https://www.bbc.com/news/technology-55634388",
        "https://example.org/what-is-in-a-name-2021/?view_url-=1"), encoding="utf-8")
    rendered = render(sample_project, path, for_sending=True)
    values = substitutions("Ann Lee", "https://u.example/T", "https://v.example/")
    html = personalize(rendered.html, values)
    assert 'href="https://example.org/what-is-in-a-name-2021/?view_url-=1"' in html
    assert "Hello Ann," in html and "Hello Ann," in personalize(rendered.text, values)


def test_sections_head_their_items_in_order(full_issue: Path, sample_project: Path) -> None:
    rendered = render(sample_project, full_issue)
    html, text = rendered.html, rendered.text
    order = [html.index(">In the press<"), html.index("With a picture</a>"),
             html.index(">From us<"), html.index("Title with &lt;i&gt;")]
    assert order == sorted(order)
    order = [text.index("== IN THE PRESS =="), text.index("With a picture"),
             text.index("== FROM US =="), text.index("Title with <i>")]
    assert order == sorted(order)
