"""Issue 12, item 14: leave this list or every list, with an optional reason, counted in status."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.store import Source, add_subscriber, find_subscriber, history, reason_counts
from newsletter.tokens import unsubscribe_token
from tests.test_web import Service, start_service


@pytest.fixture
def service(sample_project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    yield from start_service(sample_project, monkeypatch, verifier=None)


def _member_of_both(service: Service, email: str) -> str:
    """Put ``email`` on weekly and alerts; the unsubscribe link of weekly."""
    with service.db.transaction() as session:
        for slug in ("weekly", "alerts"):
            add_subscriber(session, email, slug, status="subscribed", source=Source.COMMAND)
        subscriber_id = find_subscriber(session, email).id
    return f"/unsubscribe/{unsubscribe_token(service.secret, subscriber_id, 'weekly')}"


@pytest.mark.browser
def test_leave_every_list_with_a_reason_in_a_real_browser(service: Service, new_page) -> None:
    path = _member_of_both(service, "leaver@example.org")
    page = new_page(width=375)
    page.goto(service.url + path)
    assert service.status("leaver@example.org", "weekly") == "subscribed"
    page.get_by_role("radio", name="Every list").check()
    page.get_by_label("Why are you leaving?").select_option(label="Too many emails")
    page.get_by_label("Anything you would like to tell us?").fill("Weekly is\nplenty, daily not")
    page.get_by_role("button", name="Unsubscribe").click()
    page.get_by_role("heading", name="You are unsubscribed").wait_for()
    assert "Thank you for telling us why" in page.content()
    assert service.status("leaver@example.org", "weekly") == "unsubscribed"
    assert service.status("leaver@example.org", "alerts") == "unsubscribed"
    with service.db.transaction() as session:
        details = [h.detail for h in history(session, "leaver@example.org")
                   if h.new_status == "unsubscribed"]
        counts = {(c.list_slug, c.reason): c.count for c in reason_counts(session)}
    assert details == ["unsubscribe page; reason: too-many; Weekly is plenty, daily not"] * 2
    assert counts == {("alerts", "too-many"): 1, ("weekly", "too-many"): 1}


@pytest.mark.browser
def test_leave_this_list_only_without_a_reason(service: Service, new_page) -> None:
    path = _member_of_both(service, "stayer@example.org")
    page = new_page()
    page.goto(service.url + path)
    assert page.get_by_role("radio", name="Only Weekly Brief").is_checked()
    page.get_by_role("button", name="Unsubscribe").click()
    page.get_by_role("heading", name="You are unsubscribed").wait_for()
    assert service.status("stayer@example.org", "weekly") == "unsubscribed"
    assert service.status("stayer@example.org", "alerts") == "subscribed"
    with service.db.transaction() as session:
        assert reason_counts(session) == []


def test_one_click_still_leaves_the_list_only_and_gives_no_reason(service: Service) -> None:
    path = _member_of_both(service, "oneclick@example.org")
    answer = service.client.post(path, data={"List-Unsubscribe": "One-Click",
                                             "scope": "all", "reason": "too-many"})
    assert answer.status_code == 200
    assert service.status("oneclick@example.org", "weekly") == "unsubscribed"
    assert service.status("oneclick@example.org", "alerts") == "subscribed"
    with service.db.transaction() as session:
        assert reason_counts(session) == []


def test_status_counts_the_reasons(service: Service) -> None:
    for number, reason in enumerate(("not-relevant", "not-relevant", "never-signed-up")):
        path = _member_of_both(service, f"r{number}@example.org")
        assert service.client.post(path, data={"reason": reason}).status_code == 200
    forged = _member_of_both(service, "forged@example.org")
    service.client.post(forged, data={"reason": "<script>"})  # not a known reason: none
    output = CliRunner().invoke(main, ["status"], catch_exceptions=False).output
    assert "Why readers left" in output
    row = next(line for line in output.splitlines() if "not relevant" in line)
    assert "weekly" in row and row.split()[-1] == "2"
    assert "I never signed up" in output and "script" not in output
