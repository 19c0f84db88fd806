"""The store's library API, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC

import pytest
from sqlalchemy import text

from newsletter import migrations
from newsletter.errors import NewsletterError
from newsletter.store import (
    MembershipStatus,
    NotFound,
    Recipient,
    Source,
    SubscriberStatus,
    add_subscriber,
    confirm,
    count_recipients,
    create_list,
    find_subscriber,
    get_list,
    get_or_create_list,
    history,
    iter_recipients,
    last_recipient_id,
    list_summaries,
    memberships,
    open_database,
    set_subscriber_status,
    subscribe,
    unsubscribe,
)


@pytest.fixture
def weekly(database):
    with database.transaction() as session:
        create_list(session, "weekly", "Weekly Brief")
        create_list(session, "events", "Events", "Invitations", double_opt_in=True)
    return database


def test_lists_are_created_once_and_validated(weekly) -> None:
    with weekly.transaction() as session:
        assert get_list(session, "events").opt_in == "double"
        assert get_list(session, "events").double_opt_in
        assert get_or_create_list(session, "weekly").name == "Weekly Brief"
        assert get_or_create_list(session, "new-list").opt_in == "single"
        with pytest.raises(NewsletterError, match="already exists"):
            create_list(session, "weekly", "Again")
        with pytest.raises(NewsletterError, match="cannot be a list slug"):
            create_list(session, "Has Space", "x")
        with pytest.raises(NotFound) as caught:
            get_list(session, "nope")
        assert "newsletter lists create nope" in (caught.value.hint or "")


def test_add_confirm_unsubscribe_are_recorded_with_source(weekly) -> None:
    with weekly.transaction() as session:
        membership = add_subscriber(session, " Ann@Example.ORG ", "weekly", name="Ann")
        assert membership.status == MembershipStatus.SUBSCRIBED
        assert membership.subscriber.email == "Ann@example.org"
        pending = add_subscriber(session, "ann@example.org", "events", source=Source.WEB_FORM)
        assert pending.status == MembershipStatus.UNCONFIRMED  # double opt-in list
        assert pending.subscriber_id == membership.subscriber_id  # same person, any case
        confirm(session, membership.subscriber_id, "events", detail="clicked link")
        changed = unsubscribe(session, "ANN@example.org", "weekly",
                              source=Source.UNSUBSCRIBE_LINK, detail="issue 2026-01-25")
        assert [m.mailing_list.slug for m in changed] == ["weekly"]
        assert unsubscribe(session, "ann@example.org", "weekly", source="command") == []
    with weekly.transaction() as session:
        entries = history(session, "ann@example.org")
        assert [(e.old_status, e.new_status, e.source) for e in entries] == [
            (None, "subscribed", "command"),
            (None, "unconfirmed", "web form"),
            ("unconfirmed", "subscribed", "web form"),
            ("subscribed", "unsubscribed", "unsubscribe link"),
        ]
        assert entries[-1].detail == "issue 2026-01-25"
        assert all(e.at.tzinfo is not None and e.at.utcoffset() == UTC.utcoffset(None)
                   for e in entries)
        by_list = {m.mailing_list.slug: m for m in memberships(session, "ann@example.org")}
        assert by_list["weekly"].status == "unsubscribed"
        assert by_list["weekly"].how == "unsubscribe link"
        assert by_list["events"].status == "subscribed"


def test_already_subscribed_is_never_downgraded_to_unconfirmed(weekly) -> None:
    with weekly.transaction() as session:
        subscribe(session, "bo@example.org", "events")
        again = add_subscriber(session, "bo@example.org", "events", source=Source.WEB_FORM)
        assert again.status == "subscribed"
        assert len(history(session, "bo@example.org")) == 1


def test_unsubscribe_without_list_leaves_every_list(weekly) -> None:
    with weekly.transaction() as session:
        subscribe(session, "cy@example.org", "weekly")
        subscribe(session, "cy@example.org", "events")
        changed = unsubscribe(session, "cy@example.org", source=Source.SYNC)
        assert sorted(m.mailing_list.slug for m in changed) == ["events", "weekly"]


def test_subscriber_wide_status_stops_all_mail_and_is_recorded(weekly) -> None:
    with weekly.transaction() as session:
        for name in ("a", "b", "c", "d"):
            subscribe(session, f"{name}@example.org", "weekly")
        set_subscriber_status(session, "b@example.org", SubscriberStatus.BOUNCED,
                              source=Source.WEBHOOK, detail="550 5.1.1 unknown user")
        set_subscriber_status(session, "c@example.org", "complained", source=Source.WEBHOOK)
        blocked = set_subscriber_status(session, "never-seen@example.org", "blocklisted",
                                        source=Source.COMMAND, detail="asked never to be mailed")
        assert blocked.status == "blocklisted"
        assert count_recipients(session, "weekly") == 2
        entries = history(session, "b@example.org")
        assert (entries[-1].list_id, entries[-1].new_status, entries[-1].detail) == (
            None, "bounced", "550 5.1.1 unknown user")
        summary = {s.slug: s for s in list_summaries(session)}["weekly"]
        assert (summary.subscribed, summary.recipients) == (4, 2)
    assert [r.email for r in iter_recipients(weekly.engine, "weekly")] == [
        "a@example.org", "d@example.org"]


def test_find_subscriber_by_id_or_email(weekly) -> None:
    with weekly.transaction() as session:
        member = subscribe(session, "Dee@Example.org", "weekly")
        assert find_subscriber(session, member.subscriber_id).email == "Dee@example.org"
        assert find_subscriber(session, "dee@example.org").id == member.subscriber_id
        assert find_subscriber(session, "not an address") is None
        assert find_subscriber(session, 10_000) is None
        with pytest.raises(NotFound):
            history(session, "nobody@example.org")
        with pytest.raises(NewsletterError, match="not a valid email address"):
            subscribe(session, "nobody@", "weekly")


def test_recipients_stream_in_id_order_and_resume(weekly) -> None:
    with weekly.transaction() as session:
        ids = [subscribe(session, f"p{i}@example.org", "weekly", name=f"P {i}").subscriber_id
               for i in range(25)]
        add_subscriber(session, "pending@example.org", "events", source=Source.WEB_FORM)
        unsubscribe(session, "p3@example.org", "weekly", source=Source.COMMAND)
        through = last_recipient_id(session, "weekly")
        subscribe(session, "late@example.org", "weekly")
    everyone = list(iter_recipients(weekly.engine, "weekly", chunk=4))
    assert everyone[0] == Recipient(ids[0], "p0@example.org", "P 0")
    assert [r.id for r in everyone] == sorted(r.id for r in everyone)
    assert len(everyone) == 25  # 25 - p3 + late
    frozen = list(iter_recipients(weekly.engine, "weekly", chunk=4, through_id=through))
    assert "late@example.org" not in {r.email for r in frozen}
    rest = list(iter_recipients(weekly.engine, "weekly", after_id=frozen[9].id, through_id=through))
    assert frozen[:10] + rest == frozen
    assert list(iter_recipients(weekly.engine, "events")) == []  # unconfirmed gets nothing
    with pytest.raises(NotFound):
        list(iter_recipients(weekly.engine, "missing"))


def test_recipients_use_a_server_side_cursor_on_postgresql(weekly) -> None:
    if weekly.engine.dialect.name != "postgresql":
        pytest.skip("server-side cursors are a PostgreSQL feature")
    with weekly.transaction() as session:
        for i in range(30):
            subscribe(session, f"s{i}@example.org", "weekly")
    with weekly.engine.connect() as conn:
        stream = iter_recipients(conn, "weekly", chunk=10)
        first = next(stream)
        cursors = conn.execute(text("select count(*) from pg_cursors")).scalar_one()
        assert cursors >= 1, "iter_recipients should hold a server-side cursor while streaming"
        assert len([first, *stream]) == 30


def test_open_database_sets_sqlite_pragmas(tmp_path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'sub' / 'x.db'}")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("pragma journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("pragma foreign_keys").scalar_one() == 1
        assert conn.exec_driver_sql("pragma busy_timeout").scalar_one() >= 5000
    db.dispose()


def test_unreachable_postgresql_is_a_readable_error() -> None:
    with pytest.raises(NewsletterError) as caught:
        open_database("postgresql://someone:s3cret-pw@127.0.0.1:9/nothing")
    assert "s3cret-pw" not in str(caught.value)
    assert "NEWSLETTER_DATABASE_URL" in (caught.value.hint or "")


def test_migrations_go_down_and_up_again_keeping_head(database_url: str) -> None:
    migrations.upgrade(database_url, "0001")
    assert migrations.current(database_url) == "0001"
    # An older database is never migrated implicitly: the error names the command.
    with pytest.raises(NewsletterError, match="newsletter db upgrade"):
        open_database(database_url)
    assert migrations.current(database_url) == "0001"
    migrations.upgrade(database_url)
    db = open_database(database_url)
    assert migrations.current(database_url) == migrations.head()
    with db.transaction() as session:
        create_list(session, "weekly", "Weekly")
        subscribe(session, "kept@example.org", "weekly")
    db.dispose()
    migrations.upgrade(database_url)  # a no-op at head, data kept
    db = open_database(database_url)
    with db.transaction() as session:
        assert count_recipients(session, "weekly") == 1
    db.dispose()
    migrations.downgrade(database_url, "base")
    assert migrations.current(database_url) is None
    migrations.upgrade(database_url)
    assert migrations.current(database_url) == migrations.head()
    db = open_database(database_url)
    with db.transaction() as session, pytest.raises(NotFound):
        get_list(session, "weekly")
    db.dispose()


def test_the_migrations_create_what_the_models_describe(database_url: str) -> None:
    migrations.upgrade(database_url)
    migrations.check(database_url)  # raises if autogenerate would find a difference


def test_a_database_from_a_newer_version_is_refused(database_url: str) -> None:
    migrations.upgrade(database_url)
    db = open_database(database_url)
    with db.engine.begin() as conn:
        conn.execute(text("update alembic_version set version_num = '9999'"))
    db.dispose()
    with pytest.raises(NewsletterError, match="newer version"):
        open_database(database_url)
