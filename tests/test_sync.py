"""`newsletter subscribers sync` against a fake SendGrid suppressions API on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from newsletter.errors import NewsletterError
from newsletter.project import Project
from newsletter.store import (
    Database,
    Source,
    add_subscriber,
    create_list,
    find_subscriber,
    history,
    memberships,
    open_database,
    set_subscriber_status,
)
from newsletter.sync import PAGE_SIZE, SuppressionClient, last_synced, sync_suppressions
from tests.servers import serve_asgi

KEY = "SG.sync-test-key-not-real"


@dataclass
class FakeSuppressions:
    """SendGrid's suppression endpoints, with start/end time filters and offset paging."""

    lists: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {
        "bounces": [], "spam_reports": [], "unsubscribes": []})
    groups: dict[int, list[str]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    script: list[int] = field(default_factory=list)  # statuses to answer next

    def app(self) -> Starlette:
        async def suppression(request: Request) -> JSONResponse:
            kind = request.path_params["kind"]
            params = dict(request.query_params)
            self.requests.append((kind, params))
            if request.headers.get("authorization") != f"Bearer {KEY}":
                return JSONResponse({"errors": [{"message": "authorization required"}]}, 401)
            if self.script:
                status = self.script.pop(0)
                return JSONResponse({"errors": [{"message": "scripted"}]}, status,
                                    headers={"X-RateLimit-Reset": "0"})
            limit, offset = int(params.get("limit", 500)), int(params.get("offset", 0))
            assert 1 <= limit <= 500
            rows = [r for r in self.lists[kind]
                    if int(params.get("start_time", 0)) <= r["created"]
                    <= int(params.get("end_time", 2**40))]
            return JSONResponse(rows[offset:offset + limit])

        async def group(request: Request) -> JSONResponse:
            self.requests.append(("group", {}))
            return JSONResponse(self.groups.get(int(request.path_params["group"]), []))

        return Starlette(routes=[
            Route("/v3/suppression/{kind}", suppression),
            Route("/v3/asm/groups/{group:int}/suppressions", group),
        ])


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSuppressions]:
    fake = FakeSuppressions()
    with serve_asgi(fake.app()) as url:
        monkeypatch.setenv("SENDGRID_API_HOST", url)
        monkeypatch.setenv("SENDGRID_API_KEY", KEY)
        yield fake


@pytest.fixture
def db(sample_project: Path) -> Iterator[Database]:
    database = open_database(Project(sample_project).database_url)
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
                                                  fake: FakeSuppressions) -> None:
    fake.lists["bounces"] = [{"email": "b@example.org", "created": 100, "reason": "550 gone",
                              "status": "5.1.1"}]
    fake.lists["spam_reports"] = [{"email": "s@example.org", "created": 100, "ip": "10.0.0.1"}]
    # More than two pages of unsubscribes, most of them strangers (nothing to do for them).
    fake.lists["unsubscribes"] = [{"email": "u@example.org", "created": 100}] + [
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
    assert [p["offset"] for k, p in fake.requests if k == "unsubscribes"] == ["0", "500", "1000"]
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
                                               fake: FakeSuppressions) -> None:
    fake.lists["bounces"] = [{"email": "b@example.org", "created": 100}]
    first = sync_suppressions(Project(sample_project), database=db, now=1000)
    assert first.since is None
    assert all("start_time" not in p and p["end_time"] == "1000" for _, p in fake.requests)
    with db.transaction() as session:  # b is re-activated by hand after the first sync
        set_subscriber_status(session, "b@example.org", "active", source=Source.COMMAND)
    fake.requests.clear()
    fake.lists["spam_reports"] = [{"email": "s@example.org", "created": 1500}]
    second = sync_suppressions(Project(sample_project), database=db, now=2000)
    assert second.since == 1000
    assert {p["start_time"] for _, p in fake.requests} == {"1000"}
    assert second.fetched["bounces"] == 0 and second.changed["spam reports"] == 1
    assert state(db, "b@example.org")[0] == "active"  # the old bounce is not applied again
    assert state(db, "s@example.org")[0] == "complained"
    assert last_synced(db) == 2000


def test_rate_limits_and_server_errors_are_waited_out(sample_project: Path, db: Database,
                                                      fake: FakeSuppressions) -> None:
    fake.lists["bounces"] = [{"email": "b@example.org", "created": 100}]
    fake.script = [429, 503]
    waits: list[float] = []
    client = SuppressionClient(KEY, sleep=waits.append)
    report = sync_suppressions(Project(sample_project), database=db, client=client, now=1000)
    client.close()
    assert report.changed["bounces"] == 1 and len(waits) == 2


def test_refused_key_is_a_clear_error_without_the_key(sample_project: Path, db: Database,
                                                      fake: FakeSuppressions,
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
                                  fake: FakeSuppressions) -> None:
    from click.testing import CliRunner

    from newsletter.cli import main

    fake.lists["spam_reports"] = [{"email": "s@example.org", "created": 100}]
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
