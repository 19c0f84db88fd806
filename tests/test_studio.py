"""The studio in local mode over real HTTP: saving, conflicts, uploads and its defences."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from PIL import Image

from newsletter.cli import main
from newsletter.issue_writer import text_hash
from newsletter.project import Project
from newsletter.studio import create_app
from newsletter.studio.forms import slot_id
from newsletter.studio.images import DISPLAY_WIDTH, store_image
from tests.plugins.fake_sendgrid import store_as_an_older_version_did
from tests.plugins.waiting import wait_until
from tests.servers import serve_asgi

ISSUE = "2021-02-01"


class Studio:
    """A client of a running studio that keeps its cookie and knows its CSRF token."""

    def __init__(self, client: httpx.Client, root: Path) -> None:
        self.client, self.root = client, root
        page = client.get("/")
        assert page.status_code == 200
        self.token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)

    def form(self, name: str = ISSUE) -> dict[str, object]:
        """The editor's form for ``name`` as the page fills it in."""
        html = client_page = self.client.get(f"/issues/{name}").text
        assert client_page
        data: dict[str, object] = {"csrf_token": self.token, "editor_id": "test"}
        for field, value in re.findall(r'<input id="f-[^"]+" name="([^"]+)" type="text" '
                                       r'value="([^"]*)"', html):
            data[field] = value.replace("&#39;", "'").replace("&#34;", '"').replace("&amp;", "&")
        for field, value in re.findall(r'<textarea id="f-[^"]+" name="([^"]+)"[^>]*>(.*?)'
                                       r"</textarea>", html, re.DOTALL):
            data[field] = value.replace("&#39;", "'").replace("&#34;", '"').replace("&amp;", "&")
        data["item"] = re.findall(r'name="item" value="(\d+)"', html.split("</form>")[0])
        data["base_hash"] = re.search(r'name="base_hash" value="([^"]+)"', html).group(1)
        return data


@pytest.fixture
def studio(sample_project: Path) -> Iterator[Studio]:
    with serve_asgi(create_app(sample_project)) as url, \
            httpx.Client(base_url=url, timeout=30, follow_redirects=True) as client:
        yield Studio(client, sample_project)


def photo(width: int = 3000, height: int = 2000, fmt: str = "JPEG", exif: bool = True) -> bytes:
    image = Image.new("RGB", (width, height), (200, 30, 30))
    out = io.BytesIO()
    if exif:
        info = Image.Exif()
        info[0x0112] = 6  # orientation: turned 90 degrees
        info[0x010F] = "Camera maker"
        info[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 0.0)}  # GPS
        image.save(out, format=fmt, exif=info)
    else:
        image.save(out, format=fmt)
    return out.getvalue()


def test_an_unchanged_form_saves_the_file_byte_for_byte(studio: Studio) -> None:
    path = studio.root / "issues" / f"{ISSUE}.yaml"
    before = path.read_bytes()
    answer = studio.client.post(f"/issues/{ISSUE}/autosave", data=studio.form())
    assert answer.status_code == 200 and "Saved at" in answer.text
    assert answer.headers["hx-trigger"] == "studio-saved"
    assert path.read_bytes() == before


def test_a_bad_link_is_reported_beside_its_field_in_the_cli_s_words(studio: Studio) -> None:
    form = studio.form()
    form["items-2-url"] = "not a link"
    answer = studio.client.post(f"/issues/{ISSUE}/autosave", data=form)
    slot = re.search(r'<div id="d-items-2-url"[^>]*>(.*?)</div>', answer.text, re.DOTALL)
    assert slot and "expected a full web address starting with http:// or https://" in slot[1]
    result = CliRunner().invoke(main, ["check", f"issues/{ISSUE}.yaml"])
    assert "items[3].url: expected a full web address starting with http:// or https://" \
        in result.output
    assert re.search(r"<button type=\"submit\" disabled>Send to list</button>", answer.text)


def test_a_file_changed_on_disk_is_not_overwritten_and_both_are_shown(studio: Studio) -> None:
    path = studio.root / "issues" / f"{ISSUE}.yaml"
    form = studio.form()
    path.write_text(path.read_text(encoding="utf-8").replace("Good morning.", "Hello."),
                    encoding="utf-8")
    changed = path.read_bytes()
    form["subject"] = "Mine"
    answer = studio.client.post(f"/issues/{ISSUE}", data=form)
    assert answer.status_code == 409
    assert "The file on disk now" in answer.text and "Your version" in answer.text
    assert path.read_bytes() == changed
    chosen = re.search(r'name="disk_hash" value="([^"]+)"', answer.text).group(1)
    assert chosen == text_hash(changed)
    answer = studio.client.post(f"/issues/{ISSUE}", data={**form, "action": "overwrite",
                                                          "disk_hash": chosen})
    assert answer.status_code == 200  # followed the redirect to the editor
    text = path.read_text(encoding="utf-8")
    assert "subject: Mine" in text and "Good morning." in text  # the form, all of it


def test_add_item_move_and_remove(studio: Studio) -> None:
    path = studio.root / "issues" / f"{ISSUE}.yaml"
    count = len(Project(studio.root).issue_files())
    assert count
    studio.client.post(f"/issues/{ISSUE}", data={**studio.form(), "action": "up:1"})
    titles = re.findall(r"^  - title: (.*)$", path.read_text(encoding="utf-8"), re.MULTILINE)
    assert titles[0].startswith("U.S. Declares")
    studio.client.post(f"/issues/{ISSUE}", data={**studio.form(), "action": "remove:0"})
    studio.client.post(f"/issues/{ISSUE}", data={**studio.form(), "action": "add"})
    after = re.findall(r"^  - title: (.*)$", path.read_text(encoding="utf-8"), re.MULTILINE)
    assert after[0].startswith("Leaked Chinese") and after[-1] == '""'
    assert len(after) == len(titles)


def test_a_forged_csrf_token_is_refused(studio: Studio) -> None:
    form = studio.form()
    form["csrf_token"] = studio.token[:-4] + "AAAA"
    form["subject"] = "Forged"
    answer = studio.client.post(f"/issues/{ISSUE}", data=form)
    assert answer.status_code == 403
    assert "Forged" not in (studio.root / "issues" / f"{ISSUE}.yaml").read_text()
    with httpx.Client(base_url=str(studio.client.base_url)) as stranger:  # no cookie
        answer = stranger.post("/issues", data={"csrf_token": studio.token})
    assert answer.status_code == 403


def test_a_foreign_host_header_is_refused(studio: Studio) -> None:
    answer = studio.client.get("/", headers={"host": "attacker.example:8700"})
    assert answer.status_code == 421
    answer = studio.client.post("/issues", data={"csrf_token": studio.token},
                                headers={"origin": "http://attacker.example"})
    assert answer.status_code == 403


def _upload(studio: Studio, name: str, data: bytes, kind: str = "image/jpeg") -> httpx.Response:
    return studio.client.post(f"/issues/{ISSUE}/image",
                              data={"csrf_token": studio.token, "item": "0"},
                              files={"photo": (name, data, kind)})


@pytest.mark.parametrize(("name", "data"), [
    ("../../newsletter.toml.jpg", photo(40, 30)),
    ("..\\evil.jpg", photo(40, 30)),
    ("logo.jpg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
    ("page.jpg", b"<!doctype html><html><script>alert(1)</script></html>"),
    ("notes.jpg", b"just some text"),
])
def test_uploads_that_are_not_safe_pictures_are_refused(studio: Studio, name: str,
                                                        data: bytes) -> None:
    before = (studio.root / "issues" / f"{ISSUE}.yaml").read_bytes()
    answer = _upload(studio, name, data)
    assert answer.status_code == 400
    assert "Choose a JPEG, PNG, WebP or GIF photo of at most 10 MB" in answer.text
    assert not (studio.root / "media").exists()
    assert (studio.root / "issues" / f"{ISSUE}.yaml").read_bytes() == before


def test_a_50_mb_upload_is_refused_before_it_is_read(studio: Studio) -> None:
    answer = _upload(studio, "huge.jpg", b"\xff\xd8" + b"\0" * (50 * 1024 * 1024))
    assert answer.status_code == 413
    assert not (studio.root / "media").exists()


def test_an_uploaded_photo_is_resized_stripped_and_named_by_content(studio: Studio) -> None:
    answer = _upload(studio, "holiday.jpg", photo())
    assert answer.status_code == 200
    assert "Photo added to item 1" in answer.text
    stored = list((studio.root / "media").iterdir())
    assert len(stored) == 1 and re.fullmatch(r"[0-9a-f]{20}\.jpg", stored[0].name)
    with Image.open(stored[0]) as image:
        # Turned as the camera said (3000x2000 becomes portrait), then 2x the email width.
        assert image.width == 2 * DISPLAY_WIDTH and image.height == 1800
        assert not image.getexif() and "exif" not in image.info
    text = (studio.root / "issues" / f"{ISSUE}.yaml").read_text(encoding="utf-8")
    assert f"    image: https://news.example.org/media/{stored[0].name}" in text
    assert studio.client.get(f"/media/{stored[0].name}").status_code == 200
    assert studio.client.get("/media/..%2Fnewsletter.toml").status_code == 404


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF"])
def test_other_picture_formats_are_kept(sample_project: Path, fmt: str) -> None:
    stored = store_image(Project(sample_project), photo(300, 200, fmt, exif=False), "x")
    assert stored.path.suffix == {"PNG": ".png", "WEBP": ".webp", "GIF": ".gif"}[fmt]
    assert (stored.width, stored.height) == (300, 200)


def test_the_preview_is_personalised_for_a_sample_subscriber(studio: Studio) -> None:
    html = studio.client.get(f"/issues/{ISSUE}/email.html")
    assert html.status_code == 200 and "[[nl:" not in html.text
    assert "unsubscribe/sample-preview" in html.text
    assert "frame-ancestors 'self'" in html.headers["content-security-policy"]
    dark = studio.client.get(f"/issues/{ISSUE}/email.html?dark=1").text
    assert "invert(1)" in dark
    text = studio.client.get(f"/issues/{ISSUE}/email.txt").text
    assert "Leaked Chinese Police Database" in text and "[[nl:" not in text


def test_the_studio_beyond_this_computer_needs_a_secret_and_a_user(
        sample_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSLETTER_SECRET", raising=False)
    result = CliRunner().invoke(main, ["studio", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert "NEWSLETTER_SECRET is not set" in result.output
    monkeypatch.setenv("NEWSLETTER_SECRET", "s" * 32)
    result = CliRunner().invoke(main, ["studio", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert "needs at least one user to log in" in result.output
    assert "newsletter users add" in result.output
    assert "Traceback" not in result.output


def test_the_scripts_are_vendored_small_and_noted() -> None:
    static = Path(__file__).resolve().parent.parent / "newsletter" / "studio" / "static"
    scripts = list(static.rglob("*.js"))
    assert {p.name for p in scripts} == {"htmx.min.js", "studio.js"}
    assert sum(p.stat().st_size for p in scripts) < 100 * 1024
    note = (static / "vendor" / "VERSION").read_text(encoding="utf-8")
    assert "htmx.org 2.0.11" in note and "0BSD" in note


def test_pages_allow_only_the_studio_s_own_scripts(studio: Studio) -> None:
    answer = studio.client.get(f"/issues/{ISSUE}")
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe" not in policy
    assert "http" not in answer.text.split("<body>")[0]  # nothing loaded from another site


def test_schedule_then_cancel_from_the_studio(send_project, fake_sendgrid) -> None:  # type: ignore[no-untyped-def]
    config = send_project.root / "newsletter.toml"
    config.write_text(re.sub(r'transport = "\w+"', 'transport = "sendgrid"',
                             config.read_text(encoding="utf-8")), encoding="utf-8")
    at = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).replace(microsecond=0).isoformat()
    with serve_asgi(create_app(send_project.root)) as url, \
            httpx.Client(base_url=url, timeout=30, follow_redirects=True) as client:
        studio = Studio(client, send_project.root)
        summary = client.get(f"/issues/{ISSUE}/send", params={"list": "weekly", "at": at})
        assert "Scheduled for" in summary.text and "<td>25</td>" in summary.text
        wrong = client.post(f"/issues/{ISSUE}/send", data={
            "csrf_token": studio.token, "list": "weekly", "at": at, "confirm": "weekyl"})
        assert wrong.status_code == 400 and "nothing was sent" in wrong.text
        assert fake_sendgrid.requests_seen == 0
        started = client.post(f"/issues/{ISSUE}/send", data={
            "csrf_token": studio.token, "list": "weekly", "at": at, "confirm": "weekly"})
        job = started.url.path.rsplit("/", 1)[1]

        def finished() -> str | None:
            text = client.get(f"/sends/{job}/status").text
            return text if "hx-trigger" not in text else None

        assert "Done: 25 of 25 recipients, batch 1 of 1." in wait_until(finished, 30)
        issues = client.get("/").text
        assert "scheduled" in issues and "Cancel scheduled send" in issues
        cancelled = client.post(f"/issues/{ISSUE}/cancel",
                                data={"csrf_token": studio.token, "list": "weekly"})
        assert "Cancelled: 2021-02-01 to weekly (25 recipients)" in cancelled.text
    assert list(fake_sendgrid.scheduled.values()) == ["cancel"]


def test_a_studio_send_names_an_address_it_left_out(send_project, fake_sendgrid) -> None:  # type: ignore[no-untyped-def]
    store_as_an_older_version_did(send_project, "user3@example.org", "josé@example.org")
    config = send_project.root / "newsletter.toml"
    config.write_text(re.sub(r'transport = "\w+"', 'transport = "sendgrid"',
                             config.read_text(encoding="utf-8")), encoding="utf-8")
    with serve_asgi(create_app(send_project.root)) as url, \
            httpx.Client(base_url=url, timeout=30, follow_redirects=True) as client:
        studio = Studio(client, send_project.root)
        started = client.post(f"/issues/{ISSUE}/send", data={
            "csrf_token": studio.token, "list": "weekly", "confirm": "weekly"})
        job = started.url.path.rsplit("/", 1)[1]

        def finished() -> str | None:
            text = client.get(f"/sends/{job}/status").text
            return text if "hx-trigger" not in text else None

        page = " ".join(wait_until(finished, 30).split())
    assert "Done:" in page and "24 recipients" in page
    assert "Not sent to josé@example.org: the address has non-ASCII letters before the @" in page
    assert "newsletter subscribers remove josé@example.org" in page
    assert "josé@example.org" not in fake_sendgrid.delivered()


def test_autosave_after_a_change_on_disk_offers_the_choice_in_the_page(studio: Studio) -> None:
    path = studio.root / "issues" / f"{ISSUE}.yaml"
    form = studio.form()
    path.write_text(path.read_text(encoding="utf-8") + "# from git\n", encoding="utf-8")
    form["subject"] = "Typed meanwhile"
    answer = studio.client.post(f"/issues/{ISSUE}/autosave", data=form)
    assert "Not saved: the file changed on disk" in answer.text
    assert '<div id="conflict" hx-swap-oob="true">' in answer.text
    assert 'name="action" value="overwrite">Use my version</button>' in answer.text
    assert path.read_text(encoding="utf-8").endswith("# from git\n")


@pytest.mark.parametrize(("field", "slot"), [
    ("items[3].url", "d-items-2-url"), ("items[1].image_alt", "d-items-0-image_alt"),
    ("subject", "d-subject"), ("date", "d-general"), ("(yaml)", "d-general"),
    ("items", "d-general"), ("items[2].unknown", "d-general"),
])
def test_each_diagnostic_has_its_place(field: str, slot: str) -> None:
    assert slot_id(field) == slot

