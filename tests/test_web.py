"""The web service through a real uvicorn server: sign-up, confirm, send, unsubscribe."""

from __future__ import annotations

import email
import email.policy
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from newsletter.errors import NewsletterError
from newsletter.project import Project
from newsletter.store import (
    Database,
    Source,
    add_subscriber,
    create_list,
    find_list,
    find_subscriber,
    history,
    memberships,
    open_project_database,
    unsubscribe,
)
from newsletter.tokens import sign, unsubscribe_token
from newsletter.web.app import create_app
from newsletter.web.context import Limits
from newsletter.web.signup import confirm_token
from tests.servers import serve_asgi, wait_idle

SECRET = "test-secret-0123456789-abcdefghij"


@dataclass
class Service:
    """A running web service and what the test needs around it."""

    url: str
    client: httpx.Client
    db: Database
    project: Project
    secret: bytes

    def outbox(self, folder: str = "transactional", wait_for: int = 0
               ) -> list[email.message.EmailMessage]:
        """The messages in outbox/FOLDER, oldest first, after waiting for ``wait_for`` of them.

        Sign-up emails go out after the answer (a background task), so tests wait.
        """
        path = self.project.outbox_dir / folder
        deadline = time.monotonic() + 10
        while True:
            files = sorted(path.glob("*.eml")) if path.is_dir() else []
            if len(files) >= wait_for or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                for p in files]

    def settle(self) -> list[email.message.EmailMessage]:
        """Every transactional message, once all emails due so far have gone out.

        A sentinel sign-up is queued last; when its welcome email is there, so is
        every earlier one.
        """
        sentinel = f"sentinel-{random.getrandbits(32):08x}@example.org"  # seeded per test
        answer = self.client.post("/subscribe/alerts", json={"email": sentinel})
        assert answer.status_code == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            messages = self.outbox()
            if any(m["To"] == sentinel for m in messages):
                return [m for m in messages if m["To"] != sentinel]
            time.sleep(0.02)
        raise AssertionError("the sentinel email never came")

    def status(self, address: str, slug: str) -> str | None:
        with self.db.transaction() as session:
            if find_subscriber(session, address) is None:
                return None
            for membership in memberships(session, address):
                if membership.mailing_list.slug == slug:
                    return membership.status
        return None


def start_service(root: Path, monkeypatch: pytest.MonkeyPatch, **options) -> Iterator[Service]:
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    project = Project(root)
    db = open_project_database(project)
    with db.transaction() as session:
        if find_list(session, "weekly") is None:
            create_list(session, "weekly", "Weekly Brief", "News every Monday.",
                        double_opt_in=True)
            create_list(session, "alerts", "Alerts")
    app = create_app(project, database=db, **options)
    with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield Service(url, client, db, project, SECRET.encode())
    db.dispose()


@pytest.fixture
def service(sample_project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    yield from start_service(sample_project, monkeypatch, verifier=None)


def form_token(client: httpx.Client, slug: str = "weekly") -> str:
    page = client.get(f"/subscribe/{slug}")
    assert page.status_code == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


def body_text(message: email.message.EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def link_path(text: str, kind: str) -> str:
    match = re.search(rf"https?://[^/\s]+(/{kind}/[A-Za-z0-9_.-]+)", text)
    assert match, text
    return match.group(1)


# ---------------------------------------------------------------- the whole path


def test_signup_confirm_send_and_one_click_unsubscribe(service: Service) -> None:
    from newsletter.delivery.planning import SendOptions, plan_send
    from newsletter.delivery.send import run_send

    client = service.client
    token = form_token(client)
    answer = client.post("/subscribe/weekly", data={
        "email": "Reader@Example.org", "name": "Rea", "csrf_token": token, "website": ""})
    assert answer.status_code == 200
    assert "check your inbox" in answer.text.lower()
    assert service.status("reader@example.org", "weekly") == "unconfirmed"

    [confirmation] = service.outbox(wait_for=1)
    assert confirmation["To"] == "Reader@example.org"
    assert "confirm" in confirmation["Subject"].lower()
    confirm_path = link_path(body_text(confirmation), "confirm")

    page = client.get(confirm_path)  # a mail scanner fetching the link changes nothing
    assert page.status_code == 200 and "<form" in page.text
    assert service.status("reader@example.org", "weekly") == "unconfirmed"
    done = client.post(confirm_path)
    assert done.status_code == 200 and "You are subscribed" in done.text
    assert service.status("reader@example.org", "weekly") == "subscribed"
    assert client.post(confirm_path).status_code == 200  # twice: harmless, no second welcome
    messages = service.settle()
    assert [m["Subject"] for m in messages] == [
        "Please confirm your subscription to Weekly Brief", "Welcome to Weekly Brief"]

    issue = service.project.issues_dir / "2021-02-01.yaml"
    plan = plan_send(service.project, SendOptions(issue_path=issue, list_slug="weekly"))
    report = run_send(plan)
    assert report.mode == "send"
    [sent] = service.outbox("2021-02-01")
    assert sent["To"] == "Rea <Reader@example.org>"
    assert sent["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe_url = re.search(r"<(https?://[^>]+/unsubscribe/[^>]+)>",
                                sent["List-Unsubscribe"]).group(1)
    path = "/unsubscribe/" + unsubscribe_url.rsplit("/unsubscribe/", 1)[1]

    assert client.get(path).status_code == 200  # the page: still subscribed
    assert service.status("reader@example.org", "weekly") == "subscribed"
    one_click = {"List-Unsubscribe": "One-Click"}
    assert client.post(path, data=one_click).status_code == 200
    assert service.status("reader@example.org", "weekly") == "unsubscribed"
    assert client.post(path, data=one_click).status_code == 200  # idempotent
    with service.db.transaction() as session:
        sources = [(h.new_status, h.source) for h in history(session, "reader@example.org")]
    assert sources == [("unconfirmed", Source.WEB_FORM), ("subscribed", Source.WEB_FORM),
                       ("unsubscribed", Source.UNSUBSCRIBE_LINK)]


def test_json_signup_to_single_opt_in_list_subscribes_at_once(service: Service) -> None:
    answer = service.client.post("/subscribe/alerts", json={"email": "ann@example.org"})
    assert answer.status_code == 200 and answer.json()["ok"] is True
    assert service.status("ann@example.org", "alerts") == "subscribed"
    [welcome] = service.outbox(wait_for=1)
    assert "Welcome to Alerts" in welcome["Subject"]
    assert "/unsubscribe/" in body_text(welcome)


def test_signing_up_twice_creates_nothing_twice_and_reveals_nothing(service: Service) -> None:
    client = service.client
    first = client.post("/subscribe/alerts", json={"email": "bob@example.org", "name": "Bob"})
    second = client.post("/subscribe/alerts", json={"email": "BOB@example.org", "name": "X"})
    stranger = client.post("/subscribe/alerts", json={"email": "new@example.org"})
    assert first.json() == second.json() == stranger.json()
    with service.db.transaction() as session:
        assert len(history(session, "bob@example.org")) == 1
        assert memberships(session, "bob@example.org")[0].subscriber.name == "Bob"
    token = form_token(client)
    pages = [client.post("/subscribe/weekly", data={"email": address, "csrf_token": token}).text
             for address in ("carl@example.org", "carl@example.org", "dora@example.org")]
    assert pages[0] == pages[1] == pages[2]


def test_unsubscribe_page_never_unsubscribes_by_itself(service: Service) -> None:
    with service.db.transaction() as session:
        member = add_subscriber(session, "eve@example.org", "alerts")
    path = f"/unsubscribe/{unsubscribe_token(service.secret, member.subscriber_id, 'alerts')}"
    for _ in range(3):
        page = service.client.get(path)
        assert page.status_code == 200
        assert "eve@example.org" in page.text
        assert f'<form method="post" action="{path}">' in page.text  # a real path: valid HTML
    assert service.client.head(path).status_code == 200
    assert service.status("eve@example.org", "alerts") == "subscribed"
    done = service.client.post(path)  # the page's button
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert service.status("eve@example.org", "alerts") == "unsubscribed"


# ---------------------------------------------------------------- tokens


def test_forged_and_altered_tokens_are_refused(service: Service) -> None:
    with service.db.transaction() as session:
        ann = add_subscriber(session, "ann@example.org", "alerts").subscriber_id
        bob = add_subscriber(session, "bob@example.org", "alerts").subscriber_id
    good = unsubscribe_token(service.secret, ann, "alerts")
    payload, mac = good.split(".")
    # Bob's id with Ann's signature; a token signed with another secret; another purpose.
    bob_payload = unsubscribe_token(service.secret, bob, "alerts").split(".")[0]
    forged = [
        f"{bob_payload}.{mac}",
        unsubscribe_token(b"not-the-real-secret-000000", bob, "alerts"),
        sign(service.secret, "confirm", {"s": bob, "l": "alerts"}),
        f"{payload}.{mac[:-2]}AA",
        "garbage",
    ]
    for token in forged:
        for data in ({"List-Unsubscribe": "One-Click"}, {}):
            answer = service.client.post(f"/unsubscribe/{token}", data=data)
            assert answer.status_code == 400, token
        assert service.client.get(f"/unsubscribe/{token}").status_code == 400
    # An unsubscribe token is no confirmation token, and forged ones are neither.
    for token in [good, *forged[:2], *forged[3:]]:
        assert service.client.post(f"/confirm/{token}").status_code == 400
        assert service.client.get(f"/confirm/{token}").status_code == 400
    assert service.status("bob@example.org", "alerts") == "subscribed"
    assert service.status("ann@example.org", "alerts") == "subscribed"


def test_the_confirmation_page_posts_to_its_own_address(service: Service) -> None:
    with service.db.transaction() as session:
        member = add_subscriber(session, "new@example.org", "weekly")
    path = f"/confirm/{confirm_token(service.secret, member.subscriber_id, 'weekly', days=7)}"
    page = service.client.get(path)
    assert page.status_code == 200
    assert f'<form method="post" action="{path}">' in page.text


def test_expired_confirmation_link_is_refused(service: Service) -> None:
    with service.db.transaction() as session:
        member = add_subscriber(session, "late@example.org", "weekly")
    expired = confirm_token(service.secret, member.subscriber_id, "weekly", days=-1)
    assert service.client.post(f"/confirm/{expired}").status_code == 400
    assert service.status("late@example.org", "weekly") == "unconfirmed"


# ---------------------------------------------------------------- bots and forms


def test_honeypot_answers_success_but_does_nothing(service: Service) -> None:
    token = form_token(service.client)
    answer = service.client.post("/subscribe/weekly", data={
        "email": "bot@example.org", "csrf_token": token, "website": "http://spam.example"})
    assert answer.status_code == 200 and "check your inbox" in answer.text.lower()
    assert service.status("bot@example.org", "weekly") is None
    assert service.settle() == []


def test_form_without_valid_csrf_token_is_refused(service: Service) -> None:
    form_token(service.client)  # sets the cookie
    for token in ("", "forged.token", sign(b"another-secret-0000000000", "csrf", {"n": "x"})):
        answer = service.client.post("/subscribe/weekly",
                                     data={"email": "c@example.org", "csrf_token": token})
        assert answer.status_code == 403
    with httpx.Client(base_url=service.url) as fresh:  # a token but not its cookie
        token = form_token(service.client)
        answer = fresh.post("/subscribe/weekly", data={"email": "c@example.org",
                                                       "csrf_token": token})
        assert answer.status_code == 403
    token = form_token(service.client)
    answer = service.client.post("/subscribe/weekly", headers={"Origin": "https://evil.example"},
                                 data={"email": "c@example.org", "csrf_token": token})
    assert answer.status_code == 403
    assert service.status("c@example.org", "weekly") is None


@pytest.mark.browser
def test_a_person_signs_up_confirms_and_unsubscribes_in_a_real_browser(
    service: Service, new_page
) -> None:
    page = new_page(width=375)
    page.goto(f"{service.url}/subscribe/weekly")
    page.get_by_label("Email address").fill("browser@example.org")
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_load_state()
    assert "check your inbox" in page.content().lower()
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 375
    [confirmation] = service.outbox(wait_for=1)
    page.goto(service.url + link_path(body_text(confirmation), "confirm"))
    assert service.status("browser@example.org", "weekly") == "unconfirmed"
    page.locator("form button").click()
    page.wait_for_load_state()
    assert "You are subscribed" in page.content()
    assert service.status("browser@example.org", "weekly") == "subscribed"

    with service.db.transaction() as session:
        subscriber_id = find_subscriber(session, "browser@example.org").id
    token = unsubscribe_token(service.secret, subscriber_id, "weekly")
    page.goto(f"{service.url}/unsubscribe/{token}")
    assert service.status("browser@example.org", "weekly") == "subscribed"
    page.locator("form button").click()
    page.wait_for_load_state()
    assert service.status("browser@example.org", "weekly") == "unsubscribed"


def test_form_behind_a_proxy_that_rewrites_host_is_accepted(service: Service) -> None:
    # nginx passes Host: 127.0.0.1:PORT; the browser's Origin is web_url's host.
    token = form_token(service.client)
    answer = service.client.post(
        "/subscribe/weekly", headers={"Origin": "https://news.example.org"},
        data={"email": "proxy@example.org", "csrf_token": token, "website": ""})
    assert answer.status_code == 200
    service.settle()
    assert service.status("proxy@example.org", "weekly") == "unconfirmed"


def test_sendgrid_transport_without_a_key_refuses_to_start(
    sample_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = sample_project / "newsletter.toml"
    config.write_text(config.read_text().replace('transport = "outbox"',
                                                 'transport = "sendgrid"'))
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    with pytest.raises(NewsletterError, match="SENDGRID_API_KEY"):
        create_app(Project(sample_project), verifier=None)


def test_bad_address_and_unknown_list(service: Service) -> None:
    answer = service.client.post("/subscribe/alerts", json={"email": "not an address"})
    assert answer.status_code == 400
    assert service.client.get("/subscribe/nope").status_code == 404
    assert service.client.post("/subscribe/nope", json={"email": "a@example.org"}).status_code \
        == 404
    malformed = service.client.post("/subscribe/alerts", content=b"{not json",
                                    headers={"content-type": "application/json"})
    assert malformed.status_code == 400


def test_rate_limits_per_ip_and_per_address(sample_project: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    limits = Limits(signups_per_ip=4, signups_per_address=2)
    for svc in start_service(sample_project, monkeypatch, verifier=None, limits=limits):
        for _ in range(3):
            assert svc.client.post("/subscribe/weekly",
                                   json={"email": "same@example.org"}).status_code == 200
        assert svc.client.post("/subscribe/weekly",
                               json={"email": "other@example.org"}).status_code == 200
        limited = svc.client.post("/subscribe/weekly", json={"email": "more@example.org"})
        assert limited.status_code == 429 and "Retry-After" in limited.headers
        assert svc.status("more@example.org", "weekly") is None
        wait_idle(svc.url)  # every sign-up email that was due has gone out
        sent = svc.outbox()
        # Three answers alike for same@, but the third sent nothing.
        assert sorted(m["To"] for m in svc.outbox()) == sorted(m["To"] for m in sent) == [
            "other@example.org", "same@example.org", "same@example.org"]


# ---------------------------------------------------------------- hardening


def test_security_headers_and_no_open_redirects(service: Service) -> None:
    page = service.client.get("/subscribe/weekly?next=https://evil.example/")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "same-origin"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "script-src" not in page.headers["content-security-policy"]
    assert "location" not in page.headers
    site = service.project.root / "site"
    (site / "issues" / "one").mkdir(parents=True)
    (site / "issues" / "one" / "index.html").write_text("<p>issue one</p>")
    (site / "index.html").write_text("<p>home</p>")
    assert "home" in service.client.get("/").text
    moved = service.client.get("/issues/one")
    assert moved.status_code == 307  # a folder without its slash: Starlette redirects
    assert moved.headers["location"].startswith(service.url + "/")
    (site / "evil.example").mkdir()  # even where a folder of that name exists
    (site / "evil.example" / "index.html").write_text("<p>not evil</p>")
    for path in ("//evil.example", "//evil.example/", "/\\evil.example", "/%5Cevil.example"):
        status, headers = raw_get(service.url, path)
        assert status == 404 and "location" not in headers, path
    status, _ = raw_get(service.url, "/../newsletter.toml")
    assert status == 404  # never the file above the site folder


def raw_get(base_url: str, path: str) -> tuple[int, dict[str, str]]:
    """GET ``path`` exactly as given (HTTP clients would normalise it)."""
    import http.client

    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


def test_oversized_bodies_are_refused(service: Service) -> None:
    big = {"email": "a@example.org", "name": "x" * 20_000}
    assert service.client.post("/subscribe/alerts", json=big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b"x" * 1024

    answer = service.client.post("/subscribe/alerts", content=chunks(),
                                 headers={"content-type": "application/json"})
    assert answer.status_code == 413
    assert service.status("a@example.org", "alerts") is None


def test_errors_show_no_traceback_or_secret(service: Service, monkeypatch) -> None:
    from newsletter.web import signup

    def boom(*args, **kwargs):
        raise RuntimeError(f"secret is {SECRET}")

    monkeypatch.setattr(signup, "sign_up", boom)
    answer = service.client.post("/subscribe/alerts", json={"email": "z@example.org"})
    assert answer.status_code == 500
    assert SECRET not in answer.text and "Traceback" not in answer.text
    assert "RuntimeError" not in answer.text


HEALTHY = {"status": "ok", "database": "ok", "webhook": "not configured", "mail": "ok",
           "mail_queue": {"waiting": 0, "failed": 0}}


def test_healthz_and_database_outage_answers_503(service: Service, tmp_path: Path) -> None:
    assert service.client.get("/healthz").json() == HEALTHY
    database_file = Path(service.db.engine.url.database)
    service.db.engine.dispose()
    database_file.rename(tmp_path / "moved.db")
    database_file.mkdir()  # the database path now cannot be opened
    try:
        health = service.client.get("/healthz")
        assert health.status_code == 503
        answer = service.client.post("/subscribe/alerts", json={"email": "f@example.org"})
        assert answer.status_code == 503 and "Retry-After" in answer.headers
        assert "Traceback" not in answer.text and str(database_file) not in answer.text
    finally:
        service.db.engine.dispose()
        database_file.rmdir()
        (tmp_path / "moved.db").rename(database_file)
    assert service.client.get("/healthz").status_code == 200


def test_newsletter_serve_runs_the_app_under_uvicorn(sample_project: Path) -> None:
    import os
    import subprocess
    import sys
    import time

    from tests.servers import free_port

    port = free_port()
    env = {**os.environ, "NEWSLETTER_SECRET": SECRET}
    env.pop("SENDGRID_WEBHOOK_PUBLIC_KEY", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "serve", "--host", "127.0.0.1", "--port",
         str(port)], cwd=sample_project, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert answer.json() == HEALTHY
        assert "server" not in answer.headers
        assert httpx.get(f"http://127.0.0.1:{port}/unsubscribe/abc.def").status_code == 400
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
    assert SECRET not in output
    assert "/unsubscribe/[token]" in output and "abc.def" not in output  # redacted log


def test_welcome_email_can_be_turned_off_or_overridden(sample_project: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    for svc in start_service(sample_project, monkeypatch, verifier=None, welcome=False):
        svc.client.post("/subscribe/weekly", json={"email": "quiet@example.org"})
        [confirmation] = svc.outbox(wait_for=1)
        svc.client.post(link_path(body_text(confirmation), "confirm"))
        assert svc.status("quiet@example.org", "weekly") == "subscribed"
        wait_idle(svc.url)  # the confirmation's emails (if any) have gone out
        assert len(svc.outbox()) == 1  # no welcome
    override = sample_project / "templates" / "web"
    override.mkdir(parents=True, exist_ok=True)
    (override / "confirm_email.txt.j2").write_text(
        "Subject: Bitte bestätigen\n\nBitte hier klicken: {{ confirm_url }}\n")
    for svc in start_service(sample_project, monkeypatch, verifier=None):
        svc.client.post("/subscribe/weekly", json={"email": "de@example.org"})
        german = [m for m in svc.outbox(wait_for=2) if m["To"] == "de@example.org"]
        assert german[0]["Subject"] == "Bitte bestätigen"
        assert body_text(german[0]).startswith("Bitte hier klicken: ")


def test_a_leaver_who_signs_up_again_on_a_single_opt_in_list_must_confirm(
    service: Service,
) -> None:
    with service.db.transaction() as session:
        add_subscriber(session, "back@example.org", "alerts")
        unsubscribe(session, "back@example.org", "alerts", source=Source.UNSUBSCRIBE_LINK)
    answer = service.client.post("/subscribe/alerts", json={"email": "back@example.org"})
    assert answer.status_code == 200
    assert service.status("back@example.org", "alerts") == "unconfirmed"  # not subscribed
    [confirmation] = [m for m in service.settle() if m["To"] == "back@example.org"]
    assert "confirm" in confirmation["Subject"].lower()
    done = service.client.post(link_path(body_text(confirmation), "confirm"))
    assert done.status_code == 200 and "You are subscribed" in done.text
    assert service.status("back@example.org", "alerts") == "subscribed"


def test_an_erased_address_signing_up_gets_the_usual_answer_and_no_email(
        service: Service) -> None:
    from newsletter.store import forget

    with service.db.transaction() as session:
        forget(session, "gone@example.org", secret=service.secret)
    erased = service.client.post("/subscribe/weekly", json={"email": "Gone@example.org"})
    stranger = service.client.post("/subscribe/weekly", json={"email": "new@example.org"})
    assert erased.status_code == stranger.status_code == 200
    assert erased.json() == stranger.json()  # reveals nothing
    assert [m["To"] for m in service.settle()] == ["new@example.org"]
    assert service.status("gone@example.org", "weekly") is None
