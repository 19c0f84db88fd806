"""`newsletter subscribers sync` against a fake SendGrid suppressions API on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from random import Random

import pytest

from newsletter.errors import NewsletterError
from newsletter.project import Project
from newsletter.retry import RetryPolicy
from newsletter.store import (
    Database,
    Source,
    add_subscriber,
    create_list,
    find_subscriber,
    history,
    memberships,
    open_project_database,
    set_subscriber_status,
)
from newsletter.sync import PAGE_SIZE, SuppressionClient, last_synced, sync_suppressions
from tests.plugins.fake_sendgrid import API_KEY as KEY
from tests.plugins.fake_sendgrid import FakeSendGrid, Reply


@pytest.fixture
def fake(fake_sendgrid: FakeSendGrid) -> FakeSendGrid:
    """The fake SendGrid (it checks every GET against tsg_suppressions_v3.json)."""
    return fake_sendgrid


def requested(fake: FakeSendGrid, kind: str | None = None) -> list[dict[str, str]]:
    """The query of each suppression GET (of one ``kind``), after checking none was refused."""
    assert all(status != 400 for status, _ in fake.rejected), fake.rejected
    return [query for k, query in fake.gets if kind is None or k == kind]


@pytest.fixture
def db(sample_project: Path) -> Iterator[Database]:
    database = open_project_database(Project(sample_project))
    with database.transaction() as session:
        create_list(session, "weekly", "Weekly")
        create_list(session, "alerts", "Alerts")
        for name in ("b", "s", "u", "g", "keep"):
            add_subscriber(session, f"{name}@example.org", "weekly")
            add_subscriber(session, f"{name}@example.org", "alerts")
    yield database
    database.dispose()


def state(db: Database, address: str) -> tuple[str | None, dict[str, str]]:
    with db.transaction() as session:
        found = find_subscriber(session, address)
        if found is None:
            return None, {}
        return found.status, {m.mailing_list.slug: m.status for m in memberships(session, found)}


def test_sync_applies_every_kind_and_follows_pages(sample_project: Path, db: Database,
                                                  fake: FakeSendGrid) -> None:
    fake.suppressions["bounces"] = [{"email": "b@example.org", "created": 100,
                                     "reason": "550 gone", "status": "5.1.1"}]
    fake.suppressions["spam_reports"] = [{"email": "s@example.org", "created": 100,
                                          "ip": "10.0.0.1"}]
    # More than two pages of unsubscribes, most of them strangers (nothing to do for them).
    fake.suppressions["unsubscribes"] = [{"email": "u@example.org", "created": 100}] + [
        {"email": f"x{i}@example.org", "created": 100} for i in range(2 * PAGE_SIZE + 10)]
    fake.groups[77] = ["g@example.org"]
    text = (sample_project / "newsletter.toml").read_text()
    (sample_project / "newsletter.toml").write_text(
        text.replace("[delivery]\n", "[delivery]\nsendgrid_unsubscribe_group = 77\n"))
    pages: list[tuple[str, int]] = []
    report = sync_suppressions(Project(sample_project), database=db, now=1000,
                               on_page=lambda kind, n: pages.append((kind, n)))
    assert report.fetched == {"bounces": 1, "spam reports": 1, "unsubscribes": 2 * PAGE_SIZE + 11,
                              "group unsubscribes": 1}
    assert report.changed == {"bounces": 1, "spam reports": 1, "unsubscribes": 1,
                              "group unsubscribes": 1}
    assert [n for kind, n in pages if kind == "unsubscribes"] == [PAGE_SIZE, PAGE_SIZE, 11]
    assert [p["offset"] for p in requested(fake, "unsubscribes")] == ["0", "500", "1000"]
    assert state(db, "b@example.org")[0] == "bounced"
    assert state(db, "s@example.org")[0] == "complained"
    assert state(db, "u@example.org")[1] == {"alerts": "unsubscribed", "weekly": "unsubscribed"}
    assert state(db, "g@example.org")[1] == {"alerts": "unsubscribed", "weekly": "unsubscribed"}
    assert state(db, "keep@example.org") == ("active", {"alerts": "subscribed",
                                                        "weekly": "subscribed"})
    assert state(db, "x1@example.org") == (None, {})
    with db.transaction() as session:
        [entry] = [h for h in history(session, "b@example.org") if h.list_id is None]
        assert entry.source == "sync" and "550 gone" in entry.detail
    assert last_synced(db) == 1000


def test_second_sync_asks_only_for_what_is_new(sample_project: Path, db: Database,
                                               fake: FakeSendGrid) -> None:
    fake.suppressions["bounces"] = [{"email": "b@example.org", "created": 100}]
    first = sync_suppressions(Project(sample_project), database=db, now=1000)
    assert first.since is None
    assert all("start_time" not in p and p["end_time"] == "1000"
               for p in requested(fake) if "end_time" in p or "start_time" in p)
    with db.transaction() as session:  # b is re-activated by hand after the first sync
        set_subscriber_status(session, "b@example.org", "active", source=Source.COMMAND)
    fake.gets.clear()
    fake.suppressions["spam_reports"] = [{"email": "s@example.org", "created": 1500}]
    second = sync_suppressions(Project(sample_project), database=db, now=2000)
    assert second.since == 1000
    assert {p["start_time"] for p in requested(fake)} == {"1000"}
    assert second.fetched["bounces"] == 0 and second.changed["spam reports"] == 1
    assert state(db, "b@example.org")[0] == "active"  # the old bounce is not applied again
    assert state(db, "s@example.org")[0] == "complained"
    assert last_synced(db) == 2000


def test_rate_limits_and_server_errors_are_waited_out(sample_project: Path, db: Database,
                                                      fake: FakeSendGrid) -> None:
    fake.suppressions["bounces"] = [{"email": "b@example.org", "created": 100}]
    fake.script(Reply(429, reset_in=30), Reply(503))
    waits: list[float] = []
    client = SuppressionClient(KEY, sleep=waits.append, policy=RetryPolicy(rng=Random(7)))
    report = sync_suppressions(Project(sample_project), database=db, client=client, now=1000)
    client.close()
    assert report.changed["bounces"] == 1 and len(waits) == 2
    assert 25 < waits[0] <= 30.001  # until X-RateLimit-Reset (rounded to ms)
    assert waits[1] == RetryPolicy(rng=Random(7)).backoff(2)


def test_refused_key_is_a_clear_error_without_the_key(sample_project: Path, db: Database,
                                                      fake: FakeSendGrid,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.wrong-key-value")
    with pytest.raises(NewsletterError) as caught:
        sync_suppressions(Project(sample_project), database=db, now=1000)
    assert "401" in caught.value.message and "wrong-key" not in caught.value.message
    assert last_synced(db) is None  # nothing remembered: the next run starts over
    monkeypatch.delenv("SENDGRID_API_KEY")
    with pytest.raises(NewsletterError, match="SENDGRID_API_KEY"):
        sync_suppressions(Project(sample_project), database=db, now=1000)


def test_subscribers_sync_command(sample_project: Path, db: Database,
                                  fake: FakeSendGrid) -> None:
    from click.testing import CliRunner

    from newsletter.cli import main

    fake.suppressions["spam_reports"] = [{"email": "s@example.org", "created": 100}]
    result = CliRunner().invoke(main, ["-C", str(sample_project), "subscribers", "sync"])
    assert result.exit_code == 0, result.output
    assert "spam reports" in result.output and "Next run starts there" in result.output
    assert KEY not in result.output
    assert state(db, "s@example.org")[0] == "complained"


def test_sync_without_a_key_says_which_permission(sample_project: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    with pytest.raises(NewsletterError) as caught:
        sync_suppressions(Project(sample_project), now=1000)
    assert "`newsletter subscribers sync` needs an API key in SENDGRID_API_KEY" in str(caught.value)
    assert "Suppressions" in (caught.value.hint or "")


def test_the_fake_checks_suppression_gets_against_the_openapi_description(
        fake: FakeSendGrid) -> None:
    """So the tests above mean something: parameters SendGrid would refuse are refused."""
    import urllib.error
    import urllib.request

    def status(path: str, accept: bool = True) -> int:
        headers = {"Authorization": f"Bearer {KEY}"}
        if accept:
            headers["Accept"] = "application/json"
        try:
            with urllib.request.urlopen(urllib.request.Request(fake.url + path,
                                                               headers=headers)) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    fake.groups[5] = ["g@example.org"]
    assert status("/v3/suppression/bounces?limit=500&offset=0&end_time=10") == 200
    assert status("/v3/asm/groups/5/suppressions") == 200
    assert status("/v3/suppression/bounces?limit=501") == 400  # maximum 500
    assert status("/v3/suppression/spam_reports?offset=-1") == 400
    assert status("/v3/suppression/unsubscribes?end_time=yesterday") == 400
    assert status("/v3/suppression/unsubscribes?page=2") == 400  # not a parameter
    assert status("/v3/suppression/bounces", accept=False) == 400  # Accept is required
    assert len([s for s, _ in fake.rejected if s == 400]) == 5


def test_sync_reads_through_the_one_sendgrid_client(sample_project: Path, db: Database,
                                                    fake: FakeSendGrid) -> None:
    """The suppression GETs go through SendGridClient, never another HTTP library."""
    from newsletter import sync

    assert not hasattr(sync, "httpx")
    client = SuppressionClient(KEY)
    assert client.api.host == fake.url and KEY not in repr(client)
    client.close()
