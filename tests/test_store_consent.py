"""The consent rule lives in the store: every caller gets it, on SQLite and PostgreSQL.

These call the store's functions directly (no CLI, no web), so they fail if the rule
is only enforced by one front end.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.store import (
    ConsentRequired,
    MembershipStatus,
    Outcome,
    Refusal,
    Source,
    add_subscriber,
    confirm,
    count_recipients,
    create_list,
    find_subscriber,
    history,
    memberships,
    set_subscriber_status,
    sign_up,
    subscribe,
    unsubscribe,
)
from newsletter.store.importer import import_csv


@pytest.fixture
def db(database):
    with database.transaction() as session:
        create_list(session, "weekly", "Weekly")
        create_list(session, "events", "Events", double_opt_in=True)
        subscribe(session, "left@example.org", "weekly")
        subscribe(session, "left@example.org", "events")
        unsubscribe(session, "left@example.org", source=Source.UNSUBSCRIBE_LINK)
    return database


def statuses(session, email: str) -> dict[str, str]:
    return {m.mailing_list.slug: m.status for m in memberships(session, email)}


@pytest.mark.parametrize("slug", ["weekly", "events"])
@pytest.mark.parametrize("status", [None, "subscribed", "unconfirmed"])
def test_add_never_puts_a_leaver_back_without_resubscribe(db, slug: str, status) -> None:
    with db.transaction() as session:
        before = len(history(session, "left@example.org"))
        with pytest.raises(ConsentRequired) as caught:
            add_subscriber(session, "LEFT@example.org", slug, status=status, name="New Name",
                           source=Source.IMPORT)
        assert caught.value.refusal is Refusal.LEFT
        assert f"left@example.org unsubscribed from {slug} on " in caught.value.message
        assert "unsubscribe link" in caught.value.message
        assert f"--list {slug} --resubscribe" in (caught.value.hint or "")
        assert statuses(session, "left@example.org")[slug] == "unsubscribed"
        assert len(history(session, "left@example.org")) == before
        assert find_subscriber(session, "left@example.org").name == ""


def test_subscribe_refuses_a_leaver_too_and_resubscribe_brings_them_back(db) -> None:
    with db.transaction() as session:
        with pytest.raises(ConsentRequired):
            subscribe(session, "left@example.org", "weekly")
        back = subscribe(session, "left@example.org", "weekly", resubscribe=True,
                         detail="asked by phone")
        assert back.status == MembershipStatus.SUBSCRIBED
        last = history(session, "left@example.org")[-1]
        assert (last.old_status, last.new_status, last.detail) == (
            "unsubscribed", "subscribed", "asked by phone")
        assert count_recipients(session, "weekly") == 1


def test_recording_an_unsubscribe_needs_no_consent(db) -> None:
    with db.transaction() as session:
        kept = add_subscriber(session, "left@example.org", "weekly", status="unsubscribed")
        assert kept.status == "unsubscribed"


@pytest.mark.parametrize("status", ["bounced", "complained", "blocklisted"])
def test_add_never_puts_a_suppressed_address_on_a_list(db, status: str) -> None:
    with db.transaction() as session:
        subscribe(session, "gone@example.org", "weekly")
        set_subscriber_status(session, "gone@example.org", status, source=Source.WEBHOOK)
        for slug, resubscribe in (("events", False), ("events", True), ("weekly", True)):
            with pytest.raises(ConsentRequired) as caught:
                add_subscriber(session, "gone@example.org", slug, resubscribe=resubscribe)
            assert caught.value.refusal is Refusal.SUPPRESSED
            assert f"is {status}" in caught.value.message
            assert "set-status gone@example.org active" in (caught.value.hint or "")
        assert statuses(session, "gone@example.org") == {"weekly": "subscribed"}
        # Once the address works again and they asked, staff set it back to active.
        set_subscriber_status(session, "gone@example.org", "active", source=Source.COMMAND)
        assert add_subscriber(session, "gone@example.org", "events").status == "unconfirmed"


def test_import_applies_the_same_rule(db, tmp_path: Path) -> None:
    with db.transaction() as session:
        subscribe(session, "gone@example.org", "events")
        set_subscriber_status(session, "gone@example.org", "bounced", source=Source.WEBHOOK)
    source = tmp_path / "people.csv"
    source.write_text("email\nleft@example.org\ngone@example.org\nnew@example.org\n",
                      encoding="utf-8")
    report = import_csv(db.engine, source, "events")
    assert (report.added, report.skipped) == (1, 2)
    forced = import_csv(db.engine, source, "events", resubscribe=True)
    assert (forced.updated, forced.skipped) == (1, 1)  # the leaver asked; the bounce never
    with db.transaction() as session:
        assert statuses(session, "left@example.org")["events"] == "subscribed"
        assert statuses(session, "gone@example.org")["events"] == "subscribed"  # unchanged
        assert find_subscriber(session, "gone@example.org").status == "bounced"


def test_sign_up_subscribes_newcomers_to_single_opt_in_lists(db) -> None:
    with db.transaction() as session:
        first = sign_up(session, "ann@example.org", "weekly", name="Ann")
        assert (first.outcome, first.membership.status) == (Outcome.JOINED, "subscribed")
        again = sign_up(session, "ann@example.org", "weekly", name="A Stranger")
        assert again.outcome is Outcome.UNCHANGED
        assert find_subscriber(session, "ann@example.org").name == "Ann"
        pending = sign_up(session, "ann@example.org", "events")
        assert (pending.outcome, pending.membership.status) == (Outcome.CONFIRM, "unconfirmed")


@pytest.mark.parametrize("slug", ["weekly", "events"])
def test_a_leaver_who_signs_up_again_must_confirm(db, slug: str) -> None:
    with db.transaction() as session:
        done = sign_up(session, "left@example.org", slug, source=Source.WEB_FORM)
        assert done.outcome is Outcome.CONFIRM
        assert done.membership.status == MembershipStatus.UNCONFIRMED
        assert count_recipients(session, slug) == 0  # never silently back
        last = history(session, "left@example.org")[-1]
        assert (last.old_status, last.new_status, last.source) == (
            "unsubscribed", "unconfirmed", "web form")
        assert "signed up again after unsubscribing" in last.detail
        # Signing up once more resends the link; it does not subscribe them.
        assert sign_up(session, "left@example.org", slug).outcome is Outcome.CONFIRM
        assert count_recipients(session, slug) == 0
        confirm(session, "left@example.org", slug, detail="confirmation link")
        assert count_recipients(session, slug) == 1


@pytest.mark.parametrize("status", ["bounced", "complained", "blocklisted"])
def test_sign_up_of_a_suppressed_address_records_nothing(db, status: str) -> None:
    with db.transaction() as session:
        set_subscriber_status(session, "gone@example.org", status, source=Source.WEBHOOK)
        before = len(history(session, "gone@example.org"))
        done = sign_up(session, "gone@example.org", "weekly", name="Gone")
        assert done.outcome is Outcome.REFUSED and done.membership is None
        assert memberships(session, "gone@example.org") == []
        assert len(history(session, "gone@example.org")) == before
