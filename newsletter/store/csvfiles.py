"""Reading messy CSV exports: encoding, delimiter and header detection.

Kept apart from the importer so any CSV-reading command can use it.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import NewsletterError

DELIMITERS = (",", ";", "\t")
# Header names as tools (and Excel users in a few languages) write them, after header_key().
EMAIL_HEADERS = frozenset({
    "email", "e mail", "email address", "e mail address", "emailaddress", "mail",
    "mail address", "email addresses", "e mail adresse", "email adresse", "emailadresse",
    "courriel", "adresse email", "adresse e mail", "correo", "correo electronico",
})
NAME_HEADERS = frozenset({
    "name", "full name", "fullname", "display name", "contact name", "nom complet",
})
FIRST_HEADERS = frozenset({
    "first name", "firstname", "first", "given name", "fname", "forename", "vorname",
    "prenom", "nombre",
})
LAST_HEADERS = frozenset({
    "last name", "lastname", "last", "surname", "family name", "lname", "nachname",
    "familienname", "nom", "apellido", "apellidos",
})
# A status column (our export, other tools' exports): rows with these values are skipped.
STATUS_HEADERS = frozenset({"status", "list status", "subscriber status", "member status"})
NOT_SUBSCRIBED = frozenset({
    "unsubscribed", "bounced", "complained", "blocklisted", "cleaned", "pending", "unconfirmed",
})
# Columns of our own export that describe the database, not the person.
EXPORT_ONLY_HEADERS = frozenset({"changed at", "created at"})
ATTRIBUTES_HEADER = "attributes"  # our export's JSON column, merged back as attributes


def header_key(text: str) -> str:
    """A header cell reduced for matching: "E-Mail_Address" -> "e mail address"; no accents."""
    plain = unicodedata.normalize("NFKD", text.strip().lstrip("\ufeff").lower())
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^0-9a-z]+", " ", plain).split())


def detect_encoding(path: Path) -> str:
    """"utf-8-sig" if the file is UTF-8 (with or without BOM), else "cp1252" or "latin-1"."""
    for encoding in ("utf-8-sig", "cp1252"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as raw:
                while block := raw.read(1 << 20):
                    decoder.decode(block)
                decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
    return "latin-1"  # decodes any byte sequence


def detect_delimiter(header_line: str) -> str:
    """The delimiter used in a header line: the most frequent of comma, semicolon, tab."""
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


@dataclass(frozen=True)
class Columns:
    """Where the email, name (or first/last name) and other columns are in a row."""

    email: int
    name: int | None
    first: int | None
    last: int | None
    extra: tuple[tuple[int, str], ...]  # (index, header) of columns kept as attributes
    has_header: bool
    statuses: tuple[int, ...] = ()  # status columns (see NOT_SUBSCRIBED)
    attributes: int | None = None  # a JSON "attributes" column, as our export writes


def find_columns(path: Path, first_row: list[str]) -> Columns:
    """Work out the columns from the first row (a header, or already an address)."""
    keys = [header_key(cell) for cell in first_row]

    def index(names: frozenset[str]) -> int | None:
        return next((i for i, key in enumerate(keys) if key in names), None)

    email = index(EMAIL_HEADERS)
    if email is None:
        # No header: accept a file whose first row already holds an address.
        email = next((i for i, cell in enumerate(first_row) if "@" in cell), None)
        if email is None:
            raise NewsletterError(
                f"{path}, line 1: no email column. Expected a header named email, "
                f"Email Address or E-mail; found: {', '.join(map(repr, first_row)) or 'nothing'}.",
                hint="Rename the column holding the addresses to email and run the import again.",
            )
        return Columns(email, None, None, None, (), has_header=False)
    name, first, last = index(NAME_HEADERS), index(FIRST_HEADERS), index(LAST_HEADERS)
    statuses = tuple(i for i, key in enumerate(keys) if key in STATUS_HEADERS)
    attributes = next((i for i, key in enumerate(keys) if key == ATTRIBUTES_HEADER), None)
    used = {email, name, first, last, attributes, *statuses}
    extra = tuple(
        (i, cell.strip().lstrip("\ufeff"))
        for i, cell in enumerate(first_row)
        if i not in used and cell.strip() and keys[i] not in EXPORT_ONLY_HEADERS
    )
    return Columns(email, name, first, last, extra, True, statuses, attributes)


class _CountingReader(io.RawIOBase):
    """A binary file that counts the bytes read from it (for progress)."""

    def __init__(self, raw: BinaryIO, on_read: Callable[[int], None] | None) -> None:
        self.raw = raw
        self.on_read = on_read
        self.done = 0

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.raw.close()
        super().close()

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        count = self.raw.readinto(buffer)
        if count:
            self.done += count
            if self.on_read:
                self.on_read(self.done)
        return count or 0


@dataclass
class CsvRows:
    """An open CSV file: its encoding, delimiter, columns, and rows with line numbers."""

    path: Path
    encoding: str
    delimiter: str
    columns: Columns
    header: list[str]
    rows: Iterator[tuple[int, list[str]]]  # (first line of the record, cells); no blank lines


def open_csv(
    path: Path, on_bytes: Callable[[int], None] | None = None
) -> tuple[CsvRows, Callable[[], None]]:
    """Open a CSV export for reading; returns the rows and a function closing the file."""
    if not path.is_file():
        raise NewsletterError(f"{path}: no such file.", hint="Check the path and try again.")
    encoding = detect_encoding(path)
    with path.open(encoding=encoding, newline="") as peek:
        first_line = next((line for line in peek if line.strip()), "")
    if not first_line:
        raise NewsletterError(f"{path}: the file is empty.", hint="Export it again.")
    delimiter = detect_delimiter(first_line)
    text = io.TextIOWrapper(
        # Big reads: each one lets the import's writer thread take the GIL for a while.
        io.BufferedReader(_CountingReader(path.open("rb"), on_bytes), 1 << 20),
        encoding=encoding,
        newline="",
    )
    reader = csv.reader(text, delimiter=delimiter)
    first_row: list[str] = []
    first_start = 1
    try:
        while not any(cell.strip() for cell in first_row):
            first_start = reader.line_num + 1
            first_row = next(reader)
        columns = find_columns(path, first_row)
    except csv.Error as exc:
        text.close()
        raise NewsletterError(
            f"{path}, line {first_start}: not readable as CSV ({exc})."
        ) from None
    except BaseException:
        text.close()
        raise

    def rows() -> Iterator[tuple[int, list[str]]]:
        if not columns.has_header:
            yield first_start, first_row
        start = reader.line_num + 1
        try:
            for cells in reader:
                if any(cells):  # blank lines and rows of empty cells are skipped
                    yield start, cells
                start = reader.line_num + 1
        except csv.Error as exc:
            raise NewsletterError(
                f"{path}, line {start}: not readable as CSV ({exc}).",
                hint="Fix that line (often a quote that is never closed) and run the import "
                "again; rows before it are already imported.",
            ) from None

    header = first_row if columns.has_header else []
    return CsvRows(path, encoding, delimiter, columns, header, rows()), text.close
