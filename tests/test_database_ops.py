"""Running on a named database: which one, explicit upgrades, and moving it (issue 14, 1-3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url

from newsletter import migrations
from newsletter.cli import main
from newsletter.dbcopy import tables
from newsletter.errors import NewsletterError
from newsletter.project import Project
from newsletter.store import (
    Source,
    count_recipients,
    create_list,
    find_subscriber,
    memberships,
    open_database,
    set_subscriber_status,
    unsubscribe,
)
from newsletter.store.database import PASSWORD_ENV, project_database
from newsletter.store.export import export_csv
from newsletter.store.importer import import_csv
from tests.plugins.fake_sendgrid import populate

ISSUE = "issues/2021-02-01.yaml"


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def _set_database(root: Path, url: str) -> None:
    with (root / "newsletter.toml").open("a", encoding="utf-8") as handle:
        handle.write(f'\n[database]\nurl = "{url}"\n')


def _without_password(url: str) -> tuple[str, str]:
    parsed = make_url(url)
    bare = parsed._replace(password=None).render_as_string(hide_password=False)
    return bare, parsed.password or ""


# ------------------------------------------------------------------ 1: the right database


def test_the_database_named_in_newsletter_toml_is_used_with_the_password_from_the_env(
    sample_project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, password = _without_password(database_url)
    _set_database(sample_project, url)
    if password:
        monkeypatch.setenv(PASSWORD_ENV, password)
    result = run("subscribers", "add", "ann@example.org", "--list", "weekly")
    assert result.exit_code == 0, result.output
    line = [x for x in result.output.splitlines() if x.startswith("Database: ")]
    assert len(line) == 1, result.output
    assert f":{password}@" not in result.output and "Database: " + ("PostgreSQL" if password
                                                                   else "SQLite") in result.output
    assert not (sample_project / "subscribers" / "subscribers.db").exists() or "sqlite" in url
    db = open_database(project_database(Project(sample_project)).url)
    with db.engine.connect() as conn:
        assert conn.execute(text("select count(*) from subscribers")).scalar_one() == 1
    db.dispose()


def test_a_password_in_newsletter_toml_is_refused_plainly(sample_project: Path) -> None:
    _set_database(sample_project, "postgresql://news:hunter2-secret@db.example.org/news")
    result = run("subscribers", "add", "ann@example.org", "--list", "weekly")
    assert result.exit_code != 0
    assert "password" in result.output and "NEWSLETTER_DATABASE_PASSWORD" in result.output
    assert "hunter2-secret" not in result.output and "Traceback" not in result.output


def test_a_relative_sqlite_path_in_newsletter_toml_is_the_projects(
    sample_project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _set_database(sample_project, "sqlite:///data/list.db")
    monkeypatch.chdir(tmp_path)  # like cron: started somewhere else
    choice = project_database(Project(sample_project))
    assert choice.url == f"sqlite:///{sample_project / 'data' / 'list.db'}"


@pytest.mark.postgres
def test_a_project_used_with_postgresql_never_falls_back_to_sqlite(
    sample_project: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", postgres_url)
    assert run("subscribers", "add", "ann@example.org", "--list", "weekly").exit_code == 0
    monkeypatch.delenv("NEWSLETTER_DATABASE_URL")  # cron: an empty environment
    result = run("status")
    assert result.exit_code != 0
    assert "PostgreSQL" in result.output and "NEWSLETTER_DATABASE_URL" in result.output
    assert "No sends yet" not in result.output
    assert not (sample_project / "subscribers" / "subscribers.db").exists()


def test_the_send_summary_shows_the_database(
    sample_project: Path, project_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(Project(sample_project), "weekly", 2)
    result = run("send", ISSUE, "--dry-run", input="n\n")
    summary = result.output.split("About to send", 1)[-1]
    assert "Database" in summary
    parsed = make_url(project_database_url)
    assert (parsed.host or "subscribers.db") in summary
    assert f"{parsed.username}:{parsed.password}" not in result.output


# ------------------------------------------------------------------ 3: explicit upgrades


def test_an_older_schema_names_the_command_and_db_upgrade_fixes_it(
    sample_project: Path, project_database_url: str
) -> None:
    migrations.upgrade(project_database_url, "0005")
    result = run("status")
    assert result.exit_code != 0
    assert "newsletter db upgrade" in result.output and "Traceback" not in result.output
    assert migrations.current(project_database_url) == "0005"
    status = run("db", "status")
    assert status.exit_code == 0 and "0005" in status.output and "db upgrade" in status.output
    refused = run("db", "upgrade", input="n\n")
    assert "backup" in refused.output and migrations.current(project_database_url) == "0005"
    done = run("db", "upgrade", "--yes")
    assert done.exit_code == 0, done.output
    assert migrations.current(project_database_url) == migrations.head()
    assert run("status").exit_code == 0


def test_a_newer_schema_gets_a_clear_message(
    sample_project: Path, project_database_url: str
) -> None:
    migrations.upgrade(project_database_url)
    db = open_database(project_database_url)
    with db.engine.begin() as conn:
        conn.execute(text("update alembic_version set version_num = '0999'"))
    db.dispose()
    for args in (("status",), ("db", "upgrade", "--yes"), ("db", "status")):
        result = run(*args)
        assert result.exit_code != 0
        assert "newer" in result.output and "newsletter-toolkit" in result.output
        assert "Traceback" not in result.output


def test_a_brand_new_database_is_created_without_a_step(database_url: str) -> None:
    db = open_database(database_url)
    db.dispose()
    assert migrations.current(database_url) == migrations.head()


def test_no_hint_names_the_unrelated_newsletter_package() -> None:
    root = Path(__file__).resolve().parents[1]
    offenders = [
        str(path.relative_to(root))
        for folder in ("newsletter", "docs")
        for path in (root / folder).rglob("*")
        if path.suffix in (".py", ".md") and (
            "pip install -U newsletter\n" in path.read_text(encoding="utf-8")
            or "pip install -U newsletter)" in path.read_text(encoding="utf-8")
            or "pip install newsletter\n" in path.read_text(encoding="utf-8"))
    ]
    assert not offenders
    assert "newsletter-toolkit" in (root / "pyproject.toml").read_text(encoding="utf-8")
    assert os.path.exists(root / "CHANGELOG.md")


# ------------------------------------------------------------------ 2: moving the database


def _counts(url: str) -> dict[str, int]:
    db = open_database(url)
    try:
        with db.engine.connect() as conn:
            return {t.name: conn.execute(text(f'select count(*) from "{t.name}"')).scalar_one()
                    for t in tables()}
    finally:
        db.dispose()


def test_db_copy_moves_everything_with_the_same_ids(
    sample_project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEWSLETTER_SECRET", raising=False)
    project = Project(sample_project)
    populate(project, "weekly", 5)
    assert run("send", ISSUE, "--yes").exit_code == 0  # a campaign, batches, recipients
    assert run("subscribers", "remove", "user2@example.org", "--list", "weekly").exit_code == 0
    source = project_database(project).url
    before = _counts(source)
    assert before["campaigns"] and before["campaign_batch_recipients"]
    assert before["subscriber_history"] and before["memberships"] == 5

    result = run("db", "copy", "--to", database_url)
    assert result.exit_code == 0, result.output
    assert "every count matches" in result.output
    assert _counts(database_url) == before
    db = open_database(database_url)
    with db.engine.begin() as conn:
        ids = dict(conn.execute(text("select email, id from subscribers")).all())
        status = conn.execute(text(
            "select m.status from memberships m join subscribers s on s.id = m.subscriber_id "
            "where s.email = 'user2@example.org'")).scalar_one()
    db.dispose()
    old = open_database(source)
    with old.engine.connect() as conn:
        assert ids == dict(conn.execute(text("select email, id from subscribers")).all())
    old.dispose()
    assert status.lower() == "unsubscribed"

    again = run("db", "copy", "--to", database_url)
    assert again.exit_code != 0 and "not empty" in again.output
    assert "Traceback" not in again.output

    # The sequences moved on: the next subscriber gets a new id, not an old one.
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    assert run("subscribers", "add", "new@example.org", "--list", "weekly").exit_code == 0
    db = open_database(database_url)
    with db.engine.connect() as conn:
        new_id = conn.execute(text(
            "select id from subscribers where email = 'new@example.org'")).scalar_one()
    db.dispose()
    assert new_id > max(ids.values())



def test_a_csv_round_trip_into_a_new_database_keeps_every_leaver_a_leaver(
    database_url: str, tmp_path: Path
) -> None:
    old_file = Path(__file__).parent / "data" / "import" / "mailchimp_bom.csv"
    before = open_database(f"sqlite:///{tmp_path / 'before.db'}")
    with before.transaction() as session:
        create_list(session, "weekly", "Weekly")
    import_csv(before.engine, old_file, "weekly")
    with before.transaction() as session:
        unsubscribe(session, "carla@example.org", "weekly", source=Source.COMMAND)
        set_subscriber_status(session, "dmitri@example.org", "bounced", source=Source.WEBHOOK)
    exported = tmp_path / "weekly.csv"
    with exported.open("w", newline="", encoding="utf-8") as handle:
        export_csv(before.engine, "weekly", handle)
    before.dispose()

    after = open_database(database_url)  # the restore: a new, empty database
    with after.transaction() as session:
        create_list(session, "weekly", "Weekly")
    report = import_csv(after.engine, exported, "weekly")
    # 5 of the file's 6 were imported (gülnar@ is refused: non-ASCII before the @); 2 left.
    assert report.added == 3 and report.rejected == 0
    assert {row.email for row in report.skips} == {"carla@example.org", "dmitri@example.org"}
    # Later, someone imports the old file again: the leavers stay out.
    again = import_csv(after.engine, old_file, "weekly")
    assert again.added == 0
    with after.transaction() as session:
        assert [m.status for m in memberships(session, "carla@example.org")] == ["unsubscribed"]
        assert find_subscriber(session, "dmitri@example.org").status == "bounced"
        assert count_recipients(session, "weekly") == 3
    after.dispose()


def test_the_schema_is_checked_once_per_process_in_one_query(database_url: str) -> None:
    migrations.upgrade(database_url)
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        first = open_database(database_url)
        second = open_database(database_url)
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    # One query in all (no catalogue queries), and only for the first open.
    assert seen == ["SELECT version_num FROM alembic_version"]
    first.dispose()  # forgets: the next open checks again
    second.dispose()
    other = open_database(database_url, check_schema=False)
    with other.engine.begin() as connection:
        connection.execute(text("update alembic_version set version_num = '9999'"))
    other.dispose()
    with pytest.raises(NewsletterError, match="newer"):
        open_database(database_url)


def test_the_newest_revision_by_file_name_is_alembics_head() -> None:
    assert migrations.newest_file_revision() == migrations.head()
