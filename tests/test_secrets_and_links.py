"""One secret for every command, rotation, and links bound to their person (issue 14: 2, 6)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.project import Project
from newsletter.store import add_subscriber
from newsletter.tokens import (
    BadToken,
    project_secret,
    read_unsubscribe_token,
    unsubscribe_token,
    verify,
)
from newsletter.web.app import create_app
from tests.plugins.fake_sendgrid import populate
from tests.servers import serve_asgi
from tests.test_web import Service, start_service

ISSUE = "issues/2021-02-01.yaml"
OLD = "the-old-secret-0123456789abcdef"
NEW = "the-new-secret-fedcba9876543210"


def test_serve_accepts_the_links_the_outbox_signed_without_any_setup(
    sample_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEWSLETTER_SECRET", raising=False)
    project = Project(sample_project)
    populate(project, "weekly", 2)
    sent = CliRunner().invoke(main, ["send", ISSUE, "--yes"], catch_exceptions=False)
    assert sent.exit_code == 0, sent.output
    message = (sample_project / "outbox" / "2021-02-01" / "user1@example.org.eml").read_text()
    token = re.search(r"/unsubscribe/([A-Za-z0-9_.-]+)>", message).group(1)
    app = create_app(project, verifier=None)  # no secret given: the project's own
    with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        answer = client.post(f"/unsubscribe/{token}")
        assert answer.status_code == 200 and "You are unsubscribed" in answer.text
    again = project_secret(sample_project)
    assert again.source == "subscribers/.secret"
    assert read_unsubscribe_token(again, token)[1] == "weekly"


def test_a_rotated_secret_keeps_old_links_working_until_the_old_one_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    old_link = unsubscribe_token(OLD.encode(), 7, "weekly", "ann@example.org")
    monkeypatch.setenv("NEWSLETTER_SECRET", NEW)
    monkeypatch.setenv("NEWSLETTER_SECRET_PREVIOUS", OLD)
    secret = project_secret(tmp_path)
    assert read_unsubscribe_token(secret, old_link) == (7, "weekly")
    new_link = unsubscribe_token(secret, 7, "weekly", "ann@example.org")
    assert read_unsubscribe_token(project_secret(tmp_path), new_link) == (7, "weekly")
    with pytest.raises(BadToken):
        verify(OLD.encode(), "unsubscribe", new_link)  # new links use the new secret
    monkeypatch.delenv("NEWSLETTER_SECRET_PREVIOUS")
    caplog.set_level(logging.WARNING, logger="newsletter.tokens")
    with pytest.raises(BadToken):
        read_unsubscribe_token(project_secret(tmp_path), old_link)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and "bad signature" in warnings[0].getMessage()
    assert old_link not in caplog.text and old_link.split(".")[1] not in caplog.text
    assert NEW not in caplog.text and OLD not in caplog.text


@pytest.fixture
def web(sample_project: Path, project_database_url: str, monkeypatch: pytest.MonkeyPatch):
    yield from start_service(sample_project, monkeypatch, verifier=None)


def test_a_link_never_acts_on_another_person_or_on_nobody(web: Service) -> None:
    with web.db.transaction() as session:
        ann = add_subscriber(session, "ann@example.org", "alerts").subscriber_id
        bob = add_subscriber(session, "bob@example.org", "alerts").subscriber_id
    # After a move, Ann's old id may belong to Bob: her link carries her address.
    moved = unsubscribe_token(web.secret, bob, "alerts", "ann@example.org")
    nobody = unsubscribe_token(web.secret, max(ann, bob) + 1000, "alerts", "zed@example.org")
    for token in (moved, nobody):
        for data in ({"List-Unsubscribe": "One-Click"}, {}):
            answer = web.client.post(f"/unsubscribe/{token}", data=data)
            assert answer.status_code == 400, answer.text
            assert "unsubscribed" not in answer.text.lower()
        assert web.client.get(f"/unsubscribe/{token}").status_code == 400
    assert web.status("bob@example.org", "alerts") == "subscribed"
    own = unsubscribe_token(web.secret, bob, "alerts", "bob@example.org")
    assert web.client.post(f"/unsubscribe/{own}").status_code == 200
    assert web.status("bob@example.org", "alerts") == "unsubscribed"
