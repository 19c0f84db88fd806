"""PostgreSQL sends read batches through indexes and reuse their connections.

A batch read must not scan the list (its cost would grow with the list), and the
helper processes that build request bodies must keep one connection each instead
of opening one per batch.
"""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from newsletter.delivery.batchrecipients import RecipientReader
from newsletter.delivery.campaign import create_campaign
from newsletter.delivery.planning import SendSettings
from newsletter.project import Project
from newsletter.store import get_list, open_project_database
from tests.plugins.fake_sendgrid import SECRET, own_identity, populate
from tests.test_send import everyone, send

pytestmark = pytest.mark.postgres


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found.extend(_nodes(child))
    return found


@pytest.fixture
def pg_project(sample_project: Path, postgres_url: str,
               monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", postgres_url)
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    own_identity(sample_project)  # real sends refuse the sample newsletter's identity
    return Project(sample_project)


def _weekly_reader(database: Any, batch_size: int) -> RecipientReader:
    """A reader of a new campaign to the weekly list, its batches frozen."""
    campaign_id = create_campaign(database.engine, issue_name="2021-02-01", list_slug="weekly",
                                  transport="sendgrid", subject="s", batch_size=batch_size)
    with database.session() as session:
        list_id = get_list(session, "weekly").id
    return RecipientReader(database.engine, list_id, campaign_id)


def test_a_batch_read_uses_index_ranges_on_both_tables(pg_project: Project) -> None:
    populate(pg_project, "weekly", 3000)
    database = open_project_database(pg_project)
    try:
        reader = _weekly_reader(database, batch_size=100)
        with database.engine.begin() as connection:
            connection.execute(text("ANALYZE subscribers, memberships"))
        statement = reader._statement(100)
        with database.engine.connect() as connection:
            ids = [row[0] for row in connection.execute(
                text("SELECT id FROM subscribers ORDER BY id LIMIT 100 OFFSET 1500"))]
            cursor = connection.connection.cursor()
            params = statement.compiled.construct_params(
                {"list_id": reader.list_id, "low": min(ids), "high": max(ids)})
            cursor.execute("EXPLAIN (FORMAT JSON) " + statement.sql, params)
            plan = cursor.fetchone()[0]
        plan = plan if isinstance(plan, list) else json.loads(plan)
        nodes = _nodes(plan[0]["Plan"])
        scanned = {node.get("Relation Name"): node["Node Type"] for node in nodes
                   if "Relation Name" in node}
    finally:
        database.dispose()
    assert set(scanned) == {"subscribers", "memberships"}, scanned
    index_reads = {"Index Scan", "Index Only Scan", "Bitmap Heap Scan"}
    assert set(scanned.values()) <= index_reads, scanned
    assert not [node for node in nodes if node["Node Type"] == "Seq Scan"], scanned


def test_a_send_opens_a_few_connections_not_one_per_batch(
    pg_project: Project, fake_sendgrid: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(pg_project, "weekly", 400)
    # Counted in shared memory, so the forked helper processes count too.
    opened = multiprocessing.Value("i", 0)
    real_connect = psycopg.connect

    def counting_connect(*args: Any, **kwargs: Any) -> Any:
        with opened.get_lock():
            opened.value += 1
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(psycopg, "connect", counting_connect)  # what SQLAlchemy calls
    settings = SendSettings(batch_size=10, concurrency=2, build_processes=2)
    report = send(pg_project, settings)
    assert report.complete and set(fake_sendgrid.delivered()) == everyone(400)
    assert report_used_helpers(settings)
    # 40 batches built by 2 helper processes: one connection per batch made it over 40.
    assert 0 < opened.value <= 12, f"{opened.value} connections for 40 batches"


def report_used_helpers(settings: SendSettings) -> bool:
    """The helpers only run on a machine that can fork and has more than one CPU."""
    from newsletter.delivery.building import can_fork

    if not can_fork():
        pytest.skip("helper processes need fork and more than one CPU")
    return settings.build_processes >= 2


def test_a_batch_of_a_thinly_spread_list_is_read_by_its_ids(pg_project: Project) -> None:
    # One in ten subscribers is on the list: a batch's id range holds ten times its
    # people, so a range read would read them all; the ids are read instead, exactly.
    from newsletter.delivery import batchrecipients
    from newsletter.store import Source, add_subscriber, create_list

    database = open_project_database(pg_project)
    try:
        with database.transaction() as session:
            create_list(session, "weekly", "Weekly")
            create_list(session, "other", "Other")
            for n in range(600):
                add_subscriber(session, f"u{n}@example.org", "weekly" if n % 10 == 0
                               else "other", source=Source.COMMAND)
        reader = _weekly_reader(database, batch_size=20)
        first, second = reader.read(1), reader.read(2)
        assert (first.frozen, second.frozen, reader.read(3).frozen) == (20, 20, 20)
        emails = sorted(email for _, email, _ in first.people + second.people)
        assert emails == sorted(f"u{n}@example.org" for n in range(0, 400, 10))
        assert set(reader.statements) == {batchrecipients.ARRAY}
    finally:
        database.dispose()
