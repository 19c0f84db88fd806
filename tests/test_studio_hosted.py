"""The studio hosted for a team: login, roles, sessions, rate limits, the audit log,
review links and the subscribers pages, over real HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import select, text
from starlette.applications import Starlette

from newsletter.cli import main
from newsletter.errors import NewsletterError
from newsletter.project import Project
from newsletter.store import (
    Database,
    Erasure,
    audit_entries,
    find_subscriber,
    open_project_database,
    reviews_for,
)
from newsletter.store.erasure import digest
from newsletter.store.users import add_user, find_user, remove_user, set_role
from newsletter.studio import hosted_app
from newsletter.studio.app import HOSTED_ROUTES, ROUTES
from newsletter.studio.reviews import make_link_token
from newsletter.tokens import sign
from tests.plugins.fake_sendgrid import store_as_an_older_version_did
from tests.servers import serve_asgi
from tests.test_studio import photo

ISSUE = "2021-02-01"
SECRET = b"a-test-secret-of-32-characters!!"
PASSWORD = "correct horse battery staple"
PEOPLE = {"ed@example.org": "editor", "sam@example.org": "sender", "ada@example.org": "admin"}


@pytest.fixture
def database(sample_project: Path) -> Iterator[Database]:
    db = open_project_database(Project(sample_project))
    with db.transaction() as session:
        for email, role in PEOPLE.items():
            add_user(session, email, PASSWORD, role)
    yield db
    db.dispose()


@pytest.fixture
def studio_app(sample_project: Path, database: Database) -> Starlette:
    return hosted_app(Project(sample_project), database, SECRET, extra_hosts=("127.0.0.1",))


@pytest.fixture
def studio_url(studio_app: Starlette) -> Iterator[str]:
    with serve_asgi(studio_app) as url:
        yield url


def csrf(client: httpx.Client, path: str = "/login") -> str:
    page = client.get(path)
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


def log_in(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/login", data={"csrf_token": csrf(client), "email": email,
                                       "password": password, "next": "/"})


@pytest.fixture
def as_user(studio_url: str) -> Iterator[callable]:  # type: ignore[valid-type]
    clients: list[httpx.Client] = []

    def make(email: str | None) -> httpx.Client:
        client = httpx.Client(base_url=studio_url, timeout=30, follow_redirects=True)
        clients.append(client)
        if email:
            answer = log_in(client, email)
            assert answer.status_code == 200 and "Log out" in answer.text
        return client

    yield make
    for client in clients:
        client.close()


def _concrete(path: str) -> str:
    return (path.replace("{name}", ISSUE).replace("{job}", "x").replace("{file}", "a.jpg")
            .replace("{id}", "1").replace("{key}", "k").replace("{token}", "t"))


def test_every_page_refuses_without_login(as_user) -> None:  # type: ignore[no-untyped-def]
    stranger = as_user(None)
    stranger.follow_redirects = False
    checked = 0
    for route in ROUTES:
        path = getattr(route, "path", "")
        if path.startswith(("/review/", "/static")):
            continue  # the review link is its own permission; styles are public
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            if method == "HEAD":
                continue
            answer = stranger.request(method, _concrete(path), data={"csrf_token": "x"})
            if method == "GET":
                assert answer.status_code == 303, path
                assert answer.headers["location"].startswith("/login?next=")
            else:
                assert answer.status_code in (401, 403), (method, path)
            checked += 1
    assert checked >= 20
    assert stranger.get("/login").status_code == 200
    assert {route.path for route in HOSTED_ROUTES} == {"/login", "/logout"}


def test_login_sets_a_safe_cookie_and_says_one_thing_when_wrong(studio_url: str,
                                                                as_user) -> None:  # type: ignore[no-untyped-def]
    client = as_user(None)
    for email, password in (("ed@example.org", "wrong password!"),
                            ("nobody@example.org", PASSWORD)):
        answer = log_in(client, email, password)
        assert answer.status_code == 400
        assert "Wrong email or password." in answer.text
        assert "nl_studio_session" not in client.cookies
    client.follow_redirects = False
    answer = log_in(client, "ED@example.org")
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = next(h for h in answer.headers.get_list("set-cookie")
                  if h.startswith("nl_studio_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=43200" in cookie
    assert "Secure" not in cookie  # plain http in the test; https requests get Secure
    assert client.get("/").status_code == 200
    client.post("/logout", data={"csrf_token": csrf(client, "/")})
    assert client.get("/").status_code == 303


def test_an_editor_cannot_send_to_a_list(as_user) -> None:  # type: ignore[no-untyped-def]
    editor = as_user("ed@example.org")
    editor_page = editor.get(f"/issues/{ISSUE}")
    assert editor_page.status_code == 200
    assert ">Send test</button>" in editor_page.text and ">Send to list</button>" not in \
        editor_page.text
    assert editor.get(f"/issues/{ISSUE}/send", params={"list": "weekly"}).status_code == 403
    token = csrf(editor, "/")
    answer = editor.post(f"/issues/{ISSUE}/send", data={
        "csrf_token": token, "list": "weekly", "confirm": "weekly"})
    assert answer.status_code == 403 and "may not send to lists" in answer.text
    assert editor.post(f"/issues/{ISSUE}/cancel", data={"csrf_token": token}).status_code \
        == 403
    assert editor.get("/subscribers").status_code == 403
    sender = as_user("sam@example.org")
    assert ">Send to list</button>" in sender.get(f"/issues/{ISSUE}").text
    assert sender.get("/subscribers").status_code == 403
    assert sender.get("/admin/audit").status_code == 403


def test_a_role_change_ends_the_session(as_user, database: Database) -> None:  # type: ignore[no-untyped-def]
    sender = as_user("sam@example.org")
    assert sender.get("/").status_code == 200
    with database.transaction() as session:
        set_role(session, "sam@example.org", "editor")
    sender.follow_redirects = False
    assert sender.get("/").status_code == 303


def test_a_forged_session_cookie_is_refused(studio_url: str) -> None:
    forged = sign(b"another secret, not the studio's", "studio-session", {"u": 3, "e": 0})
    with httpx.Client(base_url=studio_url, cookies={"nl_studio_session": forged}) as client:
        assert client.get("/").status_code == 303


def test_a_forged_csrf_token_and_a_foreign_host_are_refused(as_user, sample_project: Path
                                                             ) -> None:  # type: ignore[no-untyped-def]
    editor = as_user("ed@example.org")
    token = csrf(editor, "/")
    answer = editor.post(f"/issues/{ISSUE}", data={"csrf_token": token[:-4] + "AAAA",
                                                   "subject": "Forged"})
    assert answer.status_code == 403
    assert "Forged" not in (sample_project / "issues" / f"{ISSUE}.yaml").read_text()
    stranger = as_user(None)
    answer = stranger.post("/login", data={"csrf_token": "forged", "email": "ed@example.org",
                                           "password": PASSWORD})
    assert answer.status_code == 403
    for host in ("attacker.example", "127.0.0.1.attacker.example:80"):
        assert editor.get("/", headers={"host": host}).status_code == 421
    assert editor.get("/", headers={"host": "news.example.org"}).status_code == 200  # web_url


def test_the_login_rate_limit_kicks_in(as_user) -> None:  # type: ignore[no-untyped-def]
    client = as_user(None)
    for _ in range(10):
        assert log_in(client, "ed@example.org", "guessing guessing").status_code == 400
    answer = log_in(client, "ed@example.org")  # the right password, too late
    assert answer.status_code == 429 and "Too many attempts" in answer.text
    assert "nl_studio_session" not in client.cookies
    assert log_in(client, "sam@example.org").status_code == 200  # another account: fine


def test_review_links_show_one_issue_until_they_expire(
        as_user, database: Database, sample_project: Path, studio_app: Starlette) -> None:  # type: ignore[no-untyped-def]
    issues = sample_project / "issues"
    (issues / "2021-02-08.yaml").write_bytes((issues / f"{ISSUE}.yaml").read_bytes())
    editor = as_user("ed@example.org")
    made = editor.post(f"/issues/{ISSUE}/review-link", data={"csrf_token": csrf(editor, "/")})
    link = re.search(r"(http://[^<\s]+/review/[^<\s]+)</p>", made.text).group(1)  # type: ignore[union-attr]
    reviewer = as_user(None)
    page = reviewer.get(link)
    assert page.status_code == 200 and f"Review: issue {ISSUE}" in page.text
    assert "Leaked Chinese Police Database" in reviewer.get(link + "/email.html").text
    token = link.rsplit("/", 1)[1]
    body, mac = token.split(".")
    altered = sign(b"x", "studio-review", {"i": "2021-02-08"}).split(".")[0] + "." + mac
    for bad in (altered, body + "." + mac[:-2] + "AA", token.replace(".", "")):
        answer = reviewer.get(f"/review/{bad}")
        assert answer.status_code == 403 and "not valid" in answer.text
        assert reviewer.get(f"/review/{bad}/email.html").status_code == 403
    expired = make_link_token(studio_app.state.studio, ISSUE, seconds=-1)
    answer = reviewer.get(f"/review/{expired}")
    assert answer.status_code == 403 and "expired" in answer.text
    form = {"csrf_token": csrf(reviewer, f"/review/{token}"), "reviewer": "Colleague Kim",
            "comment": "Typo in item 2.", "verdict": "comment"}
    assert "your comment is noted" in reviewer.post(f"/review/{token}", data=form).text
    reviewer.post(f"/review/{token}", data={**form, "verdict": "approve", "comment": ""})
    with database.transaction() as session:
        assert [r.verdict for r in reviews_for(session, ISSUE)] == ["comment", "approve"]
    shown = editor.get(f"/issues/{ISSUE}").text
    assert "Colleague Kim</strong> commented" in shown and "Typo in item 2." in shown
    assert "Colleague Kim</strong> approved" in shown


def test_the_audit_log_records_who_did_what(as_user, database: Database,
                                            sample_project: Path) -> None:  # type: ignore[no-untyped-def]
    editor = as_user("ed@example.org")
    token = csrf(editor, "/")
    editor.post("/issues", data={"csrf_token": token})
    answer = editor.post(f"/issues/{ISSUE}/test", data={"csrf_token": token,
                                                        "addresses": "me@example.org"})
    assert "Test sent to 1 address(es)" in answer.text
    with database.transaction() as session:
        done = {(e.actor, e.action) for e in audit_entries(session)}
    assert {("ed@example.org", "login"), ("ed@example.org", "created"),
            ("ed@example.org", "tested")} <= done
    admin = as_user("ada@example.org")
    page = admin.get("/admin/audit", params={"user": "ed@example.org"})
    assert page.status_code == 200 and "<td>tested</td>" in page.text
    result = CliRunner().invoke(main, ["audit", "--user", "ed@example.org",
                                       "--since", "2020-01-01"])
    assert result.exit_code == 0 and "tested" in result.output and "created" in result.output


def test_admins_import_with_a_preview_before_anything_is_written(
        as_user, database: Database, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    admin = as_user("ada@example.org")
    CliRunner().invoke(main, ["lists", "create", "weekly", "--name", "Weekly"])
    csv_text = ("email,name\nnew.person@example.org,New Person\nnot an address,X\n"
                "new.person@example.org,Again\n")
    token = csrf(admin, "/subscribers/import")
    preview = admin.post("/subscribers/import", data={"csrf_token": token, "list": "weekly"},
                         files={"file": ("people.csv", csv_text.encode(), "text/csv")})
    assert preview.status_code == 200
    assert re.search(r"Would be added</th><td>1<", preview.text)
    assert "Line 3: not an address: invalid email address" in preview.text
    assert "Line 4: new.person@example.org: duplicate of line 2" in preview.text
    found = admin.get("/subscribers", params={"q": "new.person"})
    assert "new.person@example.org" not in found.text.split("Find someone")[1]  # not written
    key = re.search(r'action="/subscribers/import/([^"]+)"', preview.text).group(1)  # type: ignore[union-attr]
    done = admin.post(f"/subscribers/import/{key}", data={"csrf_token": token,
                                                          "filename": "people.csv"})
    assert "Imported people.csv into weekly: 1 added" in done.text
    found = admin.get("/subscribers", params={"q": "NEW PERSON"})
    person = re.search(r'href="(/subscribers/\d+)">new.person@example.org', found.text)
    assert person
    page = admin.get(person.group(1))
    assert "subscribed" in page.text and "import" in page.text
    export = admin.get("/subscribers/export", params={"list": "weekly", "format": "csv"})
    assert export.headers["content-disposition"] == 'attachment; filename="weekly.csv"'
    assert "new.person@example.org" in export.text
    with database.transaction() as session:
        actions = [e.action for e in audit_entries(session, actor="ada@example.org")]
    assert "imported" in actions and "exported" in actions


ANN = "ann.forget@example.org"


@pytest.fixture
def ann(as_user) -> tuple[httpx.Client, str]:  # type: ignore[no-untyped-def]
    """An admin's client and the path of the page of a subscriber, Ann."""
    CliRunner().invoke(main, ["lists", "create", "weekly", "--name", "Weekly"])
    admin = as_user("ada@example.org")
    added = admin.post("/subscribers/add", data={"csrf_token": csrf(admin, "/subscribers"),
                                                 "email": ANN, "list": "weekly",
                                                 "name": "Ann Example"})
    assert added.status_code == 200 and f"{ANN} is subscribed to weekly." in added.text
    assert "Forget this person</button>" in added.text
    title = re.search(r"<title>(.*?)</title>", added.text, re.DOTALL).group(1)
    assert title.startswith(f"{ANN} · ") and "<" not in title  # the page's name, nothing else
    return admin, added.url.path


def _stored(database: Database) -> tuple[bool, int]:
    with database.transaction() as session:
        return (find_subscriber(session, ANN) is not None,
                len(list(session.scalars(select(Erasure)))))


def test_an_admin_forgets_a_person_leaving_only_a_keyed_fingerprint(
        ann: tuple[httpx.Client, str], database: Database) -> None:
    admin, person = ann
    done = admin.post(f"{person}/forget", data={"csrf_token": csrf(admin, person),
                                                "confirm": f"  {ANN.upper()} "})
    assert done.status_code == 200 and done.url.path == "/subscribers"
    assert ("Forgotten: only a keyed fingerprint of the address is kept, so nobody can add "
            "them back.") in done.text
    assert ANN not in done.text
    with database.transaction() as session:
        assert find_subscriber(session, ANN) is None
        kept = [e.digest for e in session.scalars(select(Erasure))]
        entries = [e for e in audit_entries(session, actor="ada@example.org")
                   if e.action == "forgot a subscriber"]
    assert kept == [digest(SECRET, ANN)]  # keyed with the studio's secret, as serve does
    assert len(entries) == 1
    assert entries[0].target == f"subscriber #{person.rsplit('/', 1)[1]}"
    assert "ann" not in (entries[0].target + entries[0].detail).lower()
    gone = admin.get(person)
    assert gone.status_code == 400 and "No subscriber" in gone.text
    again = admin.post("/subscribers/add", data={"csrf_token": csrf(admin, "/subscribers"),
                                                 "email": ANN, "list": "weekly"})
    assert again.status_code == 400 and "erased" in again.text  # nobody can add them back
    assert _stored(database) == (False, 1)


def test_only_admins_may_forget(ann: tuple[httpx.Client, str], as_user,  # type: ignore[no-untyped-def]
                                database: Database) -> None:
    _admin, person = ann
    for email in ("ed@example.org", "sam@example.org"):
        other = as_user(email)
        assert other.get(person).status_code == 403
        answer = other.post(f"{person}/forget", data={"csrf_token": csrf(other, "/"),
                                                      "confirm": ANN})
        assert answer.status_code == 403 and "may not manage users and subscribers" in \
            answer.text
    assert _stored(database) == (True, 0)


def test_a_wrong_address_or_a_forged_token_forgets_nothing(
        ann: tuple[httpx.Client, str], database: Database) -> None:
    admin, person = ann
    token = csrf(admin, person)
    for typed in ("", "ann@example.org", "weekly"):
        answer = admin.post(f"{person}/forget", data={"csrf_token": token, "confirm": typed})
        assert answer.status_code == 400
        assert "That is not their address; nothing was forgotten." in answer.text
        assert 'aria-describedby="forget-error"' in answer.text
    forged = admin.post(f"{person}/forget", data={"csrf_token": token[:-4] + "AAAA",
                                                  "confirm": ANN})
    assert forged.status_code == 403
    assert _stored(database) == (True, 0)
    with database.transaction() as session:
        assert "forgot a subscriber" not in {e.action for e in audit_entries(session)}


def test_an_admin_forgets_a_person_an_older_version_stored(
        ann: tuple[httpx.Client, str], database: Database, sample_project: Path) -> None:
    # Non-ASCII letters before the @ are refused today; an older version stored them.
    admin, person = ann
    old = "josé.forget@example.org"
    store_as_an_older_version_did(Project(sample_project), ANN, old)
    page = admin.get(person)
    assert page.status_code == 200 and f"type their address: {old}" in page.text
    done = admin.post(f"{person}/forget", data={"csrf_token": csrf(admin, person),
                                                "confirm": old.upper()})
    assert done.status_code == 200 and done.url.path == "/subscribers"
    assert "Forgotten: only a keyed fingerprint" in done.text
    with database.transaction() as session:
        assert find_subscriber(session, old) is None
        kept = [e.digest for e in session.scalars(select(Erasure))]
    assert kept == [digest(SECRET, old)]


def test_a_studio_user_an_older_version_stored_can_still_log_in(
        as_user, database: Database) -> None:  # type: ignore[no-untyped-def]
    # Non-ASCII letters before the @ are refused for new accounts; an older version stored
    # them. Found as subscribers are (their stored form), not locked out.
    old = "josé.ed@example.org"
    with database.transaction() as session:
        session.execute(text("UPDATE studio_users SET email = :new, email_key = :key "
                             "WHERE email = :old"),
                        {"new": old, "key": old.lower(), "old": "ed@example.org"})
    client = as_user(old.upper())  # logs in (asserts "Log out"), in any letter case
    assert client.get("/").status_code == 200
    with database.transaction() as session:
        assert find_user(session, " José.Ed@Example.org ") is not None
        assert set_role(session, old, "sender").role == "sender"
        with pytest.raises(NewsletterError, match="not a valid email address"):
            add_user(session, "josé.new@example.org", PASSWORD, "editor")
    with database.transaction() as session:
        assert remove_user(session, old) == old
        assert find_user(session, old) is None


def test_serve_mounts_the_studio_under_studio(sample_project: Path, database: Database,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from newsletter.web.app import create_app as web_app

    config = sample_project / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8")
                      + '\n[studio]\nhosted = true\nallowed_hosts = ["127.0.0.1"]\n',
                      encoding="utf-8")
    app = web_app(Project(sample_project), database=database, secret=SECRET, verifier=None,
                  send=lambda **_: None)
    with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/studio/").headers["location"] == "/studio/login?next=/"
        login_page = client.get("/studio/login")
        assert 'action="/studio/login"' in login_page.text
        assert 'href="/studio/static/studio.css"' in login_page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', login_page.text).group(1)  # type: ignore[union-attr]
        answer = client.post("/studio/login", data={"csrf_token": token, "next": "/",
                                                    "email": "ed@example.org",
                                                    "password": PASSWORD})
        assert answer.headers["location"] == "/studio/"
        assert "Path=/studio" in answer.headers["set-cookie"]
        issues = client.get("/studio/")
        assert issues.status_code == 200 and f'href="/studio/issues/{ISSUE}"' in issues.text
        assert client.get("/studio/static/studio.css").status_code == 200
        # A photo is far over the service's 16 KB form limit: the mount allows uploads.
        editor = client.get(f"/studio/issues/{ISSUE}")
        token = re.search(r'name="csrf_token" value="([^"]+)"', editor.text).group(1)  # type: ignore[union-attr]
        upload = client.post(f"/studio/issues/{ISSUE}/image",
                             data={"csrf_token": token, "item": "0"},
                             files={"photo": ("holiday.jpg", photo(), "image/jpeg")})
        assert upload.status_code == 303  # a plain form post: back to the editor, with a note
        assert "Photo added to item 1" in client.get(upload.headers["location"]).text
        assert client.post("/subscribe/weekly", content=b"x" * (64 * 1024),
                           headers={"content-type": "application/x-www-form-urlencoded"}
                           ).status_code == 413  # everything else keeps its limit
