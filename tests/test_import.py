"""CSV import with real, messy files, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from newsletter.errors import NewsletterError
from newsletter.store import (
    Source,
    add_subscriber,
    bulkwrite,
    create_list,
    history,
    importer,
    set_subscriber_status,
    unsubscribe,
)
from newsletter.store.export import export_csv
from newsletter.store.importer import import_csv

DATA = Path(__file__).parent / "data" / "import"


@pytest.fixture
def db(database):
    with database.transaction() as session:
        create_list(session, "weekly", "Weekly")
        create_list(session, "events", "Events", double_opt_in=True)
    return database


def rows(result) -> list[tuple]:
    return sorted((tuple(row) for row in result), key=repr)


def snapshot(database) -> dict:
    """Everything an import can change, in comparable form."""
    with database.engine.connect() as conn:
        return {
            "subscribers": rows(conn.execute(text(
                "select email, email_key, name, status from subscribers")).all()),
            "attributes": sorted(
                (row[0], json.loads(row[1]) if isinstance(row[1], str) else row[1])
                for row in conn.execute(text("select email, attributes from subscribers"))),
            "memberships": rows(conn.execute(text(
                "select s.email, l.slug, m.status, m.how from memberships m "
                "join subscribers s on s.id = m.subscriber_id "
                "join lists l on l.id = m.list_id")).all()),
            "history": rows(conn.execute(text(
                "select s.email, h.old_status, h.new_status, h.source, h.detail "
                "from subscriber_history h join subscribers s on s.id = h.subscriber_id")).all()),
        }


def write(tmp_path: Path, name: str, body: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(body.encode(encoding))
    return path


def test_mailchimp_export_with_bom_quotes_and_newlines(db) -> None:
    report = import_csv(db.engine, DATA / "mailchimp_bom.csv", "weekly")
    assert (report.encoding, report.delimiter) == ("utf-8-sig", ",")
    # gülnar@ is valid (RFC 6531) but undeliverable through SendGrid: a reject, in words.
    assert (report.added, report.rejected, report.rows) == (5, 1, 6)
    assert report.rejects[0].line == 10
    assert "outside plain ASCII" in report.rejects[0].reason
    state = snapshot(db)
    names = {email: name for email, _key, name, _status in state["subscribers"]}
    assert names == {
        "ann.lee@example.org": "Ann Lee",
        "Bob.Okafor@example.org": "Bob Okafor",
        "carla@example.org": 'Carla "CJ" García',
        "dmitri@example.org": "Dmitri",
        "eve@exämple.org": "Eve",  # IDN domain given as xn--, stored in Unicode
    }
    attributes = dict(state["attributes"])
    assert attributes["Bob.Okafor@example.org"] == {
        "Address": "Flat 3\r\nExample House\r\nLondon", "Phone Number": "+44 20 0000 0000",
        "MEMBER_RATING": "3", "TAGS": "press,board"}
    assert attributes["ann.lee@example.org"]["Address"] == "12 Example Street, Springfield"
    # history says which file and line each person came from
    details = {email: detail for email, *_rest, detail in state["history"]}
    assert details["dmitri@example.org"] == "mailchimp_bom.csv line 9"
    assert details["carla@example.org"] == "mailchimp_bom.csv line 7"


def test_windows_1252_semicolons_and_latin1_tabs(db) -> None:
    excel = import_csv(db.engine, DATA / "excel_semicolon_cp1252.csv", "weekly")
    assert (excel.encoding, excel.delimiter, excel.added, excel.rejected) == (
        "cp1252", ";", 4, 2)
    reasons = {row.line: row.reason for row in excel.rejects}
    assert "outside plain ASCII" in reasons[2] and "(jürgen.weiß)" in reasons[2]
    assert "@-sign" in reasons[4]
    tabs = import_csv(db.engine, DATA / "tab_latin1.tsv", "weekly")
    assert (tabs.encoding, tabs.delimiter, tabs.added) == ("latin-1", "\t", 3)
    names = {row[0]: row[2] for row in snapshot(db)["subscribers"]}
    assert names["francois@example.fr"] == "François Dupré"
    assert names["zoe@example.de"] == 'Zoë; the "editor"'
    assert names["euro@example.de"] == "Price € and “quotes”"
    assert names["sean@example.ie"] == "Seán Ó Briain"
    assert names["nina@example.no"] == "Nina Ødegaard"


def test_problem_rows_are_rejected_with_line_and_reason(db, tmp_path: Path) -> None:
    rejects = io.StringIO()
    report = import_csv(db.engine, DATA / "problems.csv", "weekly", rejects=rejects)
    assert (report.added, report.rejected, report.skipped) == (3, 9, 0)
    reasons = {row.line: row.reason for row in report.rejects}
    assert reasons[5] == reasons[8] == "duplicate of line 2"
    assert "empty" in reasons[6]
    assert "period" in reasons[7] and "period" in reasons[9]
    assert "special-use" in reasons[12]
    rows = list(csv.reader(io.StringIO(rejects.getvalue())))
    assert rows[0] == ["line", "reason", "email", "name"]
    assert rows[1][:3] == ["3", rows[1][1], "bad@@example.org"]
    assert [int(r[0]) for r in rows[1:]] == [3, 4, 5, 6, 7, 8, 9, 11, 12]
    emails = {row[0] for row in snapshot(db)["subscribers"]}
    assert emails == {"good@example.org", "short.row@example.org", "last@example.org"}


def test_headerless_files_and_missing_email_column(db) -> None:
    report = import_csv(db.engine, DATA / "no_header.csv", "weekly")
    assert (report.rows, report.added) == (3, 3)
    with pytest.raises(NewsletterError) as caught:
        import_csv(db.engine, DATA / "no_email_column.csv", "weekly")
    message = str(caught.value)
    assert "no_email_column.csv, line 1" in message and "Email Address" in message


def test_nul_byte_in_an_address_is_rejected(db) -> None:
    report = import_csv(db.engine, DATA / "nul_byte.csv", "weekly")
    assert (report.added, report.rejected, report.rejects[0].line) == (2, 1, 3)


def test_unreadable_row_names_its_line_and_keeps_what_came_before(db, tmp_path: Path) -> None:
    # A quote that never closes swallows the rest of the file into one huge field.
    source = write(tmp_path, "broken.csv", "email,name\na@example.org,A\n"
                   'b@example.org,"B\n' + "c@example.org,C\n" * 10_000)
    with pytest.raises(NewsletterError, match=r"broken.csv, line 3: not readable as CSV"):
        import_csv(db.engine, source, "weekly", chunk_size=1)
    assert [row[0] for row in snapshot(db)["subscribers"]] == ["a@example.org"]


def test_importing_twice_changes_nothing(db) -> None:
    first = import_csv(db.engine, DATA / "mailchimp_bom.csv", "weekly")
    before = snapshot(db)
    second = import_csv(db.engine, DATA / "mailchimp_bom.csv", "weekly")
    assert (second.added, second.updated, second.unchanged) == (0, 0, first.added)
    assert snapshot(db) == before


def test_never_resubscribes_unsubscribed_bounced_or_complained(db, tmp_path: Path) -> None:
    people = ["left", "bounced", "complained", "blocked", "pending", "fine"]
    source = write(tmp_path, "list.csv", "email,name\n" + "".join(
        f"{p}@example.org,{p.title()}\n" for p in people))
    import_csv(db.engine, source, "weekly")
    with db.transaction() as session:
        unsubscribe(session, "left@example.org", "weekly", source=Source.UNSUBSCRIBE_LINK)
        set_subscriber_status(session, "bounced@example.org", "bounced", source=Source.WEBHOOK)
        set_subscriber_status(session, "complained@example.org", "complained",
                              source=Source.WEBHOOK)
        set_subscriber_status(session, "blocked@example.org", "blocklisted",
                              source=Source.COMMAND)
    report = import_csv(db.engine, source, "weekly")
    assert (report.skipped, report.unchanged, report.added) == (4, 2, 0)
    skipped = {row.email: row.reason for row in report.skips}
    assert "--resubscribe" in skipped["left@example.org"]
    assert "bounced" in skipped["bounced@example.org"]
    rejects = io.StringIO()
    forced = import_csv(db.engine, source, "weekly", resubscribe=True, rejects=rejects)
    assert (forced.updated, forced.skipped) == (1, 3)  # only the unsubscribed one comes back
    assert "complained@example.org" in rejects.getvalue()
    with db.transaction() as session:
        last = history(session, "left@example.org")[-1]
        assert (last.old_status, last.new_status, last.source) == (
            "unsubscribed", "subscribed", "import")
        statuses = {e.new_status for e in history(session, "bounced@example.org")}
        assert statuses == {"subscribed", "bounced"}


def test_updates_names_attributes_and_unconfirmed_members(db, tmp_path: Path) -> None:
    with db.transaction() as session:
        add_subscriber(session, "wait@example.org", "events", source=Source.WEB_FORM)
        add_subscriber(session, "named@example.org", "events", name="Old Name",
                       status="subscribed")
    source = write(tmp_path, "events.csv", "Email,Name,City\n"
                   "wait@example.org,,Berlin\nnamed@example.org,New Name,\n"
                   "named.too@example.org,,\n")
    report = import_csv(db.engine, source, "events")
    assert (report.added, report.updated, report.unchanged) == (1, 2, 0)
    state = snapshot(db)
    assert ("wait@example.org", "events", "subscribed", "import") in state["memberships"]
    names = {row[0]: row[2] for row in state["subscribers"]}
    assert names["named@example.org"] == "New Name"
    blank = write(tmp_path, "blank.csv", "email,name\nnamed@example.org,\n")
    assert import_csv(db.engine, blank, "events").unchanged == 1  # empty name keeps the old
    assert {row[0]: row[2] for row in snapshot(db)["subscribers"]}["named@example.org"] == (
        "New Name")


def many(tmp_path: Path, count: int) -> Path:
    body = "email,name\n" + "".join(f"user{i}@example.org,User {i}\n" for i in range(count))
    body += "user3@example.org,Duplicate in a later chunk\n"
    return write(tmp_path, "many.csv", body)


def test_failure_mid_file_keeps_whole_chunks_and_resumes(
    db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = many(tmp_path, 23)
    original = importer._apply_chunk

    def failing(conn, list_id, list_slug, rows, **kwargs):  # type: ignore[no-untyped-def]
        # A database error in the third chunk (lines 12-16), after its writes. Chosen by
        # its lines, not by call order: on PostgreSQL two chunks are saved at once.
        result = original(conn, list_id, list_slug, rows, **kwargs)
        if any(row[0] == 12 for row in rows):
            conn.execute(text("insert into nowhere values (:e)"), {"e": "user11@example.org"})
        return result

    monkeypatch.setattr(importer, "_apply_chunk", failing)
    with pytest.raises(NewsletterError, match="nowhere") as caught:
        import_csv(db.engine, source, "weekly", chunk_size=5)
    assert "run the same import again" in (caught.value.hint or "")
    assert "stopped at line 12" in str(caught.value)
    assert "user11" not in str(caught.value)  # no personal data in the message
    partial = snapshot(db)
    # two whole chunks, nothing of the third: no subscriber without membership and history
    assert len(partial["subscribers"]) == len(partial["memberships"]) == 10
    assert len(partial["history"]) == 10
    monkeypatch.setattr(importer, "_apply_chunk", original)
    resumed = import_csv(db.engine, source, "weekly", chunk_size=5)
    assert (resumed.unchanged, resumed.added, resumed.rejected) == (10, 13, 1)
    assert resumed.rejects[0].reason == "duplicate of line 5"
    state = snapshot(db)
    assert len(state["subscribers"]) == len(state["memberships"]) == len(state["history"]) == 23


def test_progress_reports_bytes_read(db, tmp_path: Path) -> None:
    source = many(tmp_path, 3000)
    seen: list[tuple[int, int]] = []
    import_csv(db.engine, source, "weekly", progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (source.stat().st_size, source.stat().st_size)


def test_unknown_list_and_missing_file(db, tmp_path: Path) -> None:
    with pytest.raises(NewsletterError, match="no list 'nope'"):
        import_csv(db.engine, DATA / "problems.csv", "nope")
    with pytest.raises(NewsletterError, match="no such file"):
        import_csv(db.engine, tmp_path / "missing.csv", "weekly")


def test_an_address_added_meanwhile_by_someone_else_is_handled(
    db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A web sign-up between the look-up and the insert makes the chunk retry, not fail."""
    source = write(tmp_path, "race.csv", "email,name\nrace@example.org,Race\nother@example.org,O\n")
    original = bulkwrite._BulkWriter.existing
    raced = {"done": False, "lookups": 0}

    def existing_then_signup(self, list_id, keys):  # type: ignore[no-untyped-def]
        raced["lookups"] += 1
        found = original(self, list_id, keys)
        if not raced["done"]:
            raced["done"] = True
            with db.transaction() as session:  # another connection, committed at once
                add_subscriber(session, "race@example.org", "events", source=Source.WEB_FORM)
        return found

    monkeypatch.setattr(bulkwrite._BulkWriter, "existing", existing_then_signup)
    report = import_csv(db.engine, source, "weekly")
    assert raced["lookups"] == 2  # the chunk was rolled back and retried
    assert (report.added, report.rejected) == (2, 0)
    memberships = {(email, slug) for email, slug, *_ in snapshot(db)["memberships"]}
    assert {("race@example.org", "weekly"), ("race@example.org", "events"),
            ("other@example.org", "weekly")} == memberships


def test_an_unsubscribe_meanwhile_is_never_undone_by_the_import(
    db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone unsubscribes between the import's look-up and its write: they stay out."""
    with db.transaction() as session:
        add_subscriber(session, "wait@example.org", "events", source=Source.WEB_FORM)
    source = write(tmp_path, "events.csv", "email\nwait@example.org\n")
    original = bulkwrite._BulkWriter.existing
    calls = {"n": 0}

    def existing_then_unsubscribe(self, list_id, keys):  # type: ignore[no-untyped-def]
        found = original(self, list_id, keys)
        calls["n"] += 1
        if calls["n"] == 1:
            with db.transaction() as session:
                unsubscribe(session, "wait@example.org", "events", source=Source.UNSUBSCRIBE_LINK)
        return found

    monkeypatch.setattr(bulkwrite._BulkWriter, "existing", existing_then_unsubscribe)
    report = import_csv(db.engine, source, "events")
    assert calls["n"] == 2 and (report.updated, report.skipped) == (0, 1)
    assert ("wait@example.org", "events", "unsubscribed", "unsubscribe link") in (
        snapshot(db)["memberships"])


def test_an_export_imports_back_faithfully_and_keeps_leavers_out(db, tmp_path: Path) -> None:
    import_csv(db.engine, DATA / "mailchimp_bom.csv", "weekly")
    with db.transaction() as session:
        unsubscribe(session, "carla@example.org", "weekly", source=Source.COMMAND)
        set_subscriber_status(session, "dmitri@example.org", "bounced", source=Source.WEBHOOK)
    exported = tmp_path / "weekly.csv"
    with exported.open("w", newline="", encoding="utf-8") as handle:
        assert export_csv(db.engine, "weekly", handle) == 5
    with db.transaction() as session:
        create_list(session, "copy", "Copy")
    report = import_csv(db.engine, exported, "copy")
    assert (report.added, report.skipped, report.rejected) == (3, 2, 0)
    assert {row.email: row.reason for row in report.skips} == {
        "carla@example.org": "skipped: status in the file is 'unsubscribed'",
        "dmitri@example.org": "skipped: status in the file is 'bounced'",
    }
    state = snapshot(db)
    copied = {email for email, slug, *_ in state["memberships"] if slug == "copy"}
    assert copied == {"ann.lee@example.org", "Bob.Okafor@example.org", "eve@exämple.org"}
    attributes = dict(state["attributes"])  # unchanged: no export columns crept in
    assert set(attributes["Bob.Okafor@example.org"]) == {
        "Address", "Phone Number", "MEMBER_RATING", "TAGS"}
    assert report.updated == 0


def test_attributes_column_first_and_bad_json(db, tmp_path: Path) -> None:
    source = write(tmp_path, "attrs.csv", 'attributes,email\n'
                   '"{""City"": ""Oslo""}",a@example.org\nnot json,b@example.org\n')
    report = import_csv(db.engine, source, "weekly")
    assert (report.added, report.rejected) == (1, 1)
    assert "expected a JSON object" in report.rejects[0].reason
    assert dict(snapshot(db)["attributes"])["a@example.org"] == {"City": "Oslo"}


def test_german_excel_headers(db, tmp_path: Path) -> None:
    source = write(tmp_path, "de.csv",
                   "Vorname;Nachname;E-Mail-Adresse\r\nJürgen;Weiß;jw@example.de\r\n",
                   encoding="cp1252")
    report = import_csv(db.engine, source, "weekly")
    assert report.added == 1
    assert snapshot(db)["subscribers"][0][2] == "Jürgen Weiß"


def stored_attributes(database, email: str):
    with database.engine.connect() as conn:
        return conn.execute(text("select attributes from subscribers where email = :e"),
                            {"e": email}).scalar_one()


def as_object(value):
    return json.loads(value) if isinstance(value, str) else value


def test_a_name_only_update_keeps_attributes_an_object(db, tmp_path: Path) -> None:
    # Issue 11.1: the name-only update wrote SQLite's JSON text back as a JSON string.
    first = import_csv(db.engine, DATA / "mailchimp_bom.csv", "weekly")
    rename = write(tmp_path, "rename.csv", "Email;Name\r\nann.lee@example.org;Ann Lée\r\n",
                   encoding="cp1252")
    assert import_csv(db.engine, rename, "weekly").updated == 1
    attributes = as_object(stored_attributes(db, "ann.lee@example.org"))
    assert isinstance(attributes, dict) and attributes["Address"].startswith("12 Example")
    again = import_csv(db.engine, DATA / "mailchimp_bom.csv", "weekly")
    assert again.rejected == first.rejected == 1  # gülnar@: see the Mailchimp test
    assert again.unchanged + again.updated == first.added
    assert as_object(stored_attributes(db, "ann.lee@example.org")) == attributes


def _migration(name: str):
    import importlib.util

    import newsletter.migrations

    path = Path(newsletter.migrations.__file__).parent / "versions" / name
    spec = importlib.util.spec_from_file_location(f"migration_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_migration_0005_repairs_double_encoded_attributes(db) -> None:
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    with db.transaction() as session:
        add_subscriber(session, "ann@example.org", "weekly", name="Ann")
        add_subscriber(session, "bob@example.org", "weekly", name="Bob")
    good = {"City": "München", "Tags": "a,b"}
    damaged = json.dumps(json.dumps(json.dumps(good)))  # encoded three times
    cast = "CAST(:v AS json)" if db.engine.dialect.name == "postgresql" else ":v"
    with db.engine.begin() as conn:
        conn.execute(text(f"update subscribers set attributes = {cast} "
                          "where email = 'ann@example.org'"), {"v": damaged})
        conn.execute(text(f"update subscribers set attributes = {cast} "
                          "where email = 'bob@example.org'"), {"v": json.dumps("just text")})
    assert isinstance(as_object(stored_attributes(db, "ann@example.org")), str)
    migration = _migration("0005_repair_attributes.py")
    assert migration.revision == "0005"
    with db.engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
        migration.upgrade()
    assert as_object(stored_attributes(db, "ann@example.org")) == good
    # A JSON string that holds no object is not this damage: left alone.
    assert stored_attributes(db, "bob@example.org") in ("just text", json.dumps("just text"))
