"""Issue 12, items 12 and 13: the default list's opt-in, and `subscribers forget`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.project import Project
from newsletter.store import find_list, open_project_database


@pytest.fixture
def run(project_database_url: str):
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True, input: str | None = None):
        result = runner.invoke(main, list(args), catch_exceptions=False, input=input)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke


def _db(root: Path):
    return open_project_database(Project(root))


def test_the_default_list_is_created_by_the_store_as_double_opt_in(
        run, sample_project: Path) -> None:
    run("subscribers", "add", "ann@example.org")  # first use of [delivery] default_list
    db = _db(sample_project)
    with db.transaction() as session:
        weekly = find_list(session, "weekly")
        assert weekly is not None and weekly.double_opt_in
    db.dispose()


# ---------------------------------------------------------------- item 13: forget

SECRET = "erasure-test-secret-0123456789abcdef"


def _rows(db, email: str) -> dict[str, int]:
    """How many rows anywhere in the database still mention ``email`` (or its subscriber)."""
    from sqlalchemy import func, select

    from newsletter.store.models import HistoryEntry, Membership, ReaderEvent, Subscriber

    with db.transaction() as session:
        found = session.scalars(select(Subscriber).where(
            Subscriber.email_key == email.lower())).one_or_none()
        sid = found.id if found else -1
        return {
            "subscriber": int(found is not None),
            "memberships": session.scalar(select(func.count()).select_from(Membership).where(
                Membership.subscriber_id == sid)),
            "history": session.scalar(select(func.count()).select_from(HistoryEntry).where(
                HistoryEntry.subscriber_id == sid)),
            "reader_events": session.scalar(select(func.count()).select_from(ReaderEvent).where(
                ReaderEvent.subscriber_id == sid)),
        }


def test_forget_erases_everything_and_keeps_only_a_keyed_hash(
        run, sample_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import text

    from newsletter.store import Source, add_subscriber
    from newsletter.store.engagement import Engagement, record_engagement

    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    run("subscribers", "import", "subscribers/sample.csv", "--list", "weekly")
    db = _db(sample_project)
    email = "carla.garcia@example.org"
    with db.transaction() as session:
        add_subscriber(session, email, "weekly", attributes={"city": "Madrid"},
                       source=Source.COMMAND, detail="met Carla Garcia at the fair")
        record_engagement(session, [Engagement(1, "open", email, 1_700_000_000),
                                    Engagement(1, "click", email, 1_700_000_100, "https://x.org/")])
    assert _rows(db, email)["reader_events"] == 2

    refused = run("subscribers", "forget", email, input="n\n", ok=False)
    assert refused.exit_code == 1 and "Nothing was erased" in refused.output
    assert _rows(db, email)["subscriber"] == 1

    done = run("subscribers", "forget", email, input="y\n").output
    assert "Erased" in done and "can never be added again" in done
    assert _rows(db, email) == {"subscriber": 0, "memberships": 0, "history": 0,
                                "reader_events": 0}
    with db.engine.connect() as connection:
        erasures = connection.execute(text("SELECT * FROM erasures")).mappings().all()
        dump = " ".join(str(v) for row in connection.execute(
            text("SELECT * FROM subscriber_history")).all() for v in row)
    assert len(erasures) == 1
    stored = " ".join(str(v) for v in erasures[0].values()).lower()
    assert "carla" not in stored and "garcia" not in stored and "madrid" not in stored
    assert "carla" not in dump.lower() and "madrid" not in dump.lower()
    assert len(erasures[0]["digest"]) == 64  # an HMAC-SHA256, not the address
    shown = run("subscribers", "show", email, ok=False)
    assert shown.exit_code != 0 and "Traceback" not in shown.output
    db.dispose()


def test_an_erased_address_can_never_be_added_back(
        run, sample_project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from newsletter.store import (
        ConsentRequired,
        Outcome,
        Refusal,
        add_subscriber,
        sign_up,
        use_secret,
    )

    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    run("subscribers", "import", "subscribers/sample.csv", "--list", "weekly")
    email = "carla.garcia@example.org"
    run("subscribers", "forget", "Carla.Garcia@Example.org", "--yes")

    again = run("subscribers", "import", "subscribers/sample.csv", "--list", "weekly",
                "--rejects", str(tmp_path / "rejects.csv")).output
    assert "erased on request" in again
    assert "carla.garcia@example.org" in (tmp_path / "rejects.csv").read_text(encoding="utf-8")
    added = run("subscribers", "add", email.upper(), "--resubscribe", ok=False)
    assert added.exit_code != 0 and "Traceback" not in added.output
    assert "erased on request" in added.output
    db = _db(sample_project)
    use_secret(db.engine, SECRET.encode())
    with db.transaction() as session:
        with pytest.raises(ConsentRequired) as refusal:
            add_subscriber(session, email, "weekly")
        assert refusal.value.refusal is Refusal.ERASED
        assert sign_up(session, email, "weekly").outcome is Outcome.REFUSED
    assert _rows(db, email)["subscriber"] == 0
    db.dispose()


def test_with_erasures_but_no_secret_nobody_new_is_added(
        run, sample_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from newsletter.errors import NewsletterError
    from newsletter.store import add_subscriber, create_list, forget

    db = _db(sample_project)
    with db.transaction() as session:
        create_list(session, "weekly", "Weekly")
        forget(session, "gone@example.org", secret=SECRET.encode())
    monkeypatch.delenv("NEWSLETTER_SECRET", raising=False)
    with db.transaction() as session, pytest.raises(NewsletterError, match="secret"):
        add_subscriber(session, "new@example.org", "weekly")
    db.dispose()


def test_a_person_an_older_version_stored_can_be_marked_and_erased(
        run, sample_project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Non-ASCII letters before the @ are refused today, but an older version stored them.
    import unicodedata

    from sqlalchemy import text

    from newsletter.store import get_subscriber, use_secret
    from newsletter.store.erasure import digest, is_erased
    from tests.plugins.fake_sendgrid import store_as_an_older_version_did

    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    run("subscribers", "import", "subscribers/sample.csv", "--list", "weekly")
    project = Project(sample_project)
    store_as_an_older_version_did(project, "carla.garcia@example.org", "josé@example.org")
    decomposed = unicodedata.normalize("NFD", "JOSÉ@Example.org")  # as some keyboards type it
    for args in (("show", decomposed), ("set-status", decomposed, "bounced"),
                 ("remove", "josé@example.org"), ("show", "josé@example.org")):
        said = run("subscribers", *args).output
        assert "No subscriber" not in said and "not in the subscriber database" not in said
    assert "bounced" in said and "weekly" in said and "unsubscribed" in said
    db = _db(sample_project)
    assert _rows(db, "josé@example.org")["history"] == 3  # joined, bounced, removed

    refused = run("subscribers", "add", "josé@example.org", "--list", "weekly", ok=False)
    said = " ".join(refused.output.split())
    assert refused.exit_code != 0 and "Traceback" not in said
    assert "ask the person for another one" in said and "`forget` still work on it" in said

    done = run("subscribers", "forget", decomposed, "--yes").output
    assert f"Erased {decomposed}: left 1 list(s); 3 history entries" in done
    assert _rows(db, "josé@example.org") == {"subscriber": 0, "memberships": 0, "history": 0,
                                             "reader_events": 0}
    with db.engine.connect() as connection:
        kept = connection.execute(text("SELECT digest FROM erasures")).scalars().all()
    assert kept == [digest(SECRET.encode(), "josé@example.org")]  # keyed as for anyone
    use_secret(db.engine, SECRET.encode())
    with db.transaction() as session:
        assert is_erased(session, "josé@example.org")
        assert get_subscriber(session, "ann.lee@example.org")  # nobody else was touched
    again = run("subscribers", "forget", "josé@example.org", "--yes").output
    assert "was not stored; it is recorded all the same" in again  # harmless twice
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM erasures")).scalar_one() == 1
    db.dispose()


def test_marking_an_address_like_it_that_is_not_stored_says_what_to_do(
        run, sample_project: Path) -> None:
    refused = run("subscribers", "set-status", "zoë@example.org", "blocklisted", ok=False)
    said = " ".join(refused.output.split())
    assert refused.exit_code != 0 and "Traceback" not in said
    assert "has letters outside plain ASCII" in said and "ask the person for another" in said
