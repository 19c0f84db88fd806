"""Hostile CSV and Excel input: each case is refused or neutralised cleanly, its line named."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from sqlalchemy import text

from newsletter.cli import main
from newsletter.delivery import refusals
from newsletter.store import (
    Source,
    SubscriberStatus,
    add_subscriber,
    create_list,
    find_subscriber,
    forget,
    set_subscriber_status,
    use_secret,
)
from newsletter.store.erasure import digest, is_erased
from newsletter.store.export import export_csv, export_xlsx
from newsletter.store.importer import import_csv

HOSTILE_NAMES = [
    '=HYPERLINK("http://evil","Click")',
    "=1+1",
    "+44 phone",
    "-Ann-",
    "@SUM(A1:A2)",
    "\tTabbed",
    "\rReturn",
    "'=already quoted",
    "O'Brien",
    "'plain quote",
]


@pytest.fixture
def db(database):
    with database.transaction() as session:
        create_list(session, "weekly", "Weekly")
        create_list(session, "copy", "Copy")
    return database


def names(db) -> dict[str, str]:
    with db.engine.connect() as conn:
        return dict(conn.execute(text("select email, name from subscribers")).all())


def write(tmp_path: Path, body: bytes, name: str = "hostile.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(body)
    return path


# (file bytes, line the reason must name, words the reason must hold)
REFUSED = {
    "nul in a name": (b"email,name\na@example.org,A\nb@example.org,Na\0me\n", 3, "NUL"),
    "nul in an address": (b"email,name\nb@exa\0mple.org,B\nc@example.org,C\n", 2, "NUL"),
    "quote never closed, at the end": (
        b'email,name\na@example.org,A\nb@example.org,"Bob\nc@example.org,Carl\n', 3,
        "never closed"),
    "quote never closed, mid-file": (
        b'email,name\nb@example.org,"Bob\nc@example.org,Carl\nd@example.org,"Dee\n'
        b"e@example.org,Eve\n", 2, "never closed"),
    "quote never closed, semicolons": (
        b'email;name\nb@example.org;"Bob\nc@example.org;Carl\n', 2, "never closed"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_hostile_rows_are_refused_with_their_line(db, tmp_path: Path, case: str) -> None:
    body, line, words = REFUSED[case]
    report = import_csv(db.engine, write(tmp_path, body), "weekly")
    assert report.rejected >= 1
    reasons = {row.line: row.reason for row in report.rejects}
    assert words in reasons[line] and f"line {line}" in reasons[line]
    assert "\0" not in "".join(names(db).values())
    assert all("\n" not in name for name in names(db).values())


def test_a_closed_multi_line_field_is_not_a_swallowed_row(db, tmp_path: Path) -> None:
    body = b'email,name,Address\na@example.org,A,"Flat 3\nExample House, London"\n'
    report = import_csv(db.engine, write(tmp_path, body), "weekly")
    assert (report.added, report.rejected) == (1, 0)


def test_one_latin1_row_does_not_turn_utf8_rows_into_mojibake(db, tmp_path: Path) -> None:
    body = ("email,name\njuergen@example.de,Jürgen\n".encode()
            + "zoe@example.de,Zoë\n".encode("cp1252")
            + "beijing@example.cn,北京\n".encode())
    report = import_csv(db.engine, write(tmp_path, body), "weekly")
    assert report.added == 3 and report.fallback_lines == [3]
    assert report.encoding == "utf-8 and cp1252"
    assert names(db) == {"juergen@example.de": "Jürgen", "zoe@example.de": "Zoë",
                         "beijing@example.cn": "北京"}


def test_cli_warns_about_the_fallback_line(project_database_url, tmp_path: Path) -> None:
    source = write(tmp_path, "email,name\na@example.de,Jürgen\n".encode()
                   + "b@example.de,Zoë\n".encode("cp1252"))
    result = CliRunner().invoke(main, ["subscribers", "import", str(source), "--list",
                                       "weekly"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "read as Windows-1252: line 3" in " ".join(result.output.split())


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_export_neutralises_formulas_and_imports_back_exactly(db, tmp_path: Path,
                                                               name: str) -> None:
    source = tmp_path / "in.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["email", "name", "nick"],
                                      ["x@example.org", name, "-Ann-"],
                                      ["=y@example.org", "+44 phone", "+44 phone"]])
    # The import unescapes '=…; a name that starts that way in a foreign file loses its '.
    # Names are stripped of spaces, tabs and line breaks around them, as always.
    expected = (name[1:] if name.startswith("'=") else name).strip()
    import_csv(db.engine, source, "weekly")
    assert names(db)["x@example.org"] == expected
    out = io.StringIO()
    export_csv(db.engine, "weekly", out)
    for row in csv.reader(io.StringIO(out.getvalue())):
        assert row[0][:1] not in "=+-@\t\r" and row[1][:1] not in "=+-@\t\r"
    assert '"=' not in out.getvalue()
    exported = write(tmp_path, out.getvalue().encode(), "export.csv")
    report = import_csv(db.engine, exported, "copy")
    assert (report.added, report.rejected) == (2, 0)
    again = io.StringIO()
    export_csv(db.engine, "copy", again)
    assert names(db)["x@example.org"] == expected
    assert names(db)["=y@example.org"] == "+44 phone"
    with db.engine.connect() as conn:
        stored = conn.execute(text(
            "select attributes from subscribers where email = 'x@example.org'")).scalar_one()
    assert (json.loads(stored) if isinstance(stored, str) else stored) == {"nick": "-Ann-"}


def test_rejects_file_neutralises_hostile_cells(db, tmp_path: Path) -> None:
    body = b'email,name\nnot-an-address,"=HYPERLINK(""http://evil"",""Click"")"\n'
    rejects = io.StringIO()
    import_csv(db.engine, write(tmp_path, body), "weekly", rejects=rejects)
    rows = list(csv.reader(io.StringIO(rejects.getvalue())))
    assert rows[1][3] == '\'=HYPERLINK("http://evil","Click")'
    assert rejects.getvalue().startswith('"line"')


def test_xlsx_export_writes_text_never_formulas_and_imports_back(db, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["email", "name"]] + [
            [f"p{i}@example.org", name] for i, name in enumerate(HOSTILE_NAMES)])
    import_csv(db.engine, source, "weekly")
    book_path = tmp_path / "weekly.xlsx"
    assert export_xlsx(db.engine, "weekly", book_path) == len(HOSTILE_NAMES)
    sheet = load_workbook(book_path).worksheets[0]
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    report = import_csv(db.engine, book_path, "copy")
    assert (report.encoding, report.added, report.rejected) == ("xlsx", len(HOSTILE_NAMES), 0)
    expected = [(n[1:] if n.startswith("'=") else n).strip() for n in HOSTILE_NAMES]
    assert sorted(names(db).values()) == sorted(expected)


def test_a_broken_workbook_is_refused_cleanly(db, tmp_path: Path) -> None:
    from newsletter.errors import NewsletterError

    broken = write(tmp_path, b"PK\x03\x04 not really a zip", "list.xlsx")
    with pytest.raises(NewsletterError, match="not readable as an Excel workbook"):
        import_csv(db.engine, broken, "weekly")


# Parts before the @ that look plain but are not ASCII (homoglyphs, invisible and
# direction-changing characters, a quoted part holding an @): refused when imported, and
# left out by a send when a database made by an older version holds them.
NON_ASCII_LOCAL_PARTS = [
    "josé@example.org",
    "pаypal@example.org",  # a Cyrillic а
    "ann\u200b@example.org",  # a zero-width space
    "\u202eann@example.org",  # right-to-left override
    "ａｎｎ@example.org",  # fullwidth letters
    '"jo@sé"@example.org',
]


@pytest.mark.parametrize("address", NON_ASCII_LOCAL_PARTS)
def test_a_non_ascii_part_before_the_at_is_refused_in_and_left_out_of_a_send(
        db, tmp_path: Path, address: str) -> None:
    text = io.StringIO()
    csv.writer(text).writerows([["email", "name"], ["ann@münchen.de", "Ann"], [address, "X"]])
    report = import_csv(db.engine, write(tmp_path, text.getvalue().encode()), "weekly")
    assert (report.added, report.rejected) == (1, 1)
    assert (report.rejects[0].line, report.rejects[0].email) == (3, address)
    rows = [(1, "ann@münchen.de", "Ann"), (2, address, "X"), (3, "bob@example.org", "Bob")]
    assert refusals.split(rows) == ([rows[0], rows[2]], [rows[1]])


@pytest.mark.parametrize("address", NON_ASCII_LOCAL_PARTS)
def test_such_an_address_an_older_version_stored_can_be_marked_and_erased(
        db, address: str) -> None:
    # Some of them today's email-validator refuses outright: they are found as typed.
    secret = b"hostile-erasure-secret-0123456789"
    with db.transaction() as session:
        add_subscriber(session, "old@example.org", "weekly")
        add_subscriber(session, "ann@example.org", "weekly")
    with db.transaction() as session:  # behind the store's back, as an older version did
        session.execute(text("UPDATE subscribers SET email = :new, email_key = :key "
                             "WHERE email = 'old@example.org'"),
                        {"new": address, "key": address.lower()})
    with db.transaction() as session:
        person = find_subscriber(session, f"  {address.upper()} ")
        assert person is not None and person.email == address
        set_subscriber_status(session, address, SubscriberStatus.BLOCKLISTED,
                              source=Source.COMMAND, detail="hostile")
        assert person.status == SubscriberStatus.BLOCKLISTED
        done = forget(session, address, secret=secret)
        assert done.known and done.lists == 1 and done.history == 2
    use_secret(db.engine, secret)  # is_erased needs the key registered for the engine
    with db.transaction() as session:
        assert find_subscriber(session, address) is None
        assert find_subscriber(session, "ann@example.org") is not None  # only them
        assert is_erased(session, address)
        kept = session.execute(text("SELECT digest FROM erasures")).scalars().all()
    assert kept == [digest(secret, address)]
