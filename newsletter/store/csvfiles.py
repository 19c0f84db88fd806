"""Reading messy CSV exports: encoding, delimiter and header detection.

Kept apart from the importer so any CSV-reading command can use it.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..errors import NewsletterError
from .cells import ESCAPED_IN_BYTES, unescape

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


class _Lines:
    """The lines of a binary file as text, decoded one by one: UTF-8, else cp1252.

    One Windows byte in a UTF-8 file must not turn every other row into mojibake,
    so each line is decoded on its own; the lines that needed the fallback are
    listed in ``fallback`` (cp1252, or Latin-1 for the few bytes cp1252 lacks).
    Lines holding a NUL byte or a neutralised formula cell (``'=...``) are noted
    too, so that only their rows pay for the extra checks. Line numbers count like
    the csv module's ``line_num``.
    """

    def __init__(self, raw: BinaryIO, on_read: Callable[[int], None] | None) -> None:
        self.raw = raw
        self.on_read = on_read
        self.done = 0  # bytes read
        self.count = 0  # lines handed out
        self.at_end = False
        self.last = ""  # the file's last line, once at_end
        self.bom = False
        self.utf8 = False  # some line holds non-ASCII UTF-8
        self.latin1 = False  # some line had a byte that cp1252 lacks
        self.fallback: list[int] = []
        self.nul: set[int] = set()
        self.escaped: set[int] = set()

    def __iter__(self) -> Iterator[str]:
        # chain() hands out the lines of each decoded block without Python work per line.
        return itertools.chain.from_iterable(self._blocks())

    def close(self) -> None:
        self.raw.close()

    def _read(self) -> bytes:
        block = self.raw.read(1 << 20)
        if block:
            self.done += len(block)
            if self.on_read:
                self.on_read(self.done)
        return block

    def _blocks(self) -> Iterator[list[str]]:
        leftover = b""
        first = True
        while True:
            more = self._read()
            block = leftover + more
            if more:
                # Cut after the last line break (a lone \r may be half of \r\n: not there).
                cut = block.rfind(b"\n") + 1 or block.rfind(b"\r", 0, len(block) - 1) + 1
                if not cut:
                    leftover = block
                    continue
                block, leftover = block[:cut], block[cut:]
            elif not block:
                self.at_end = True
                return
            else:
                leftover = b""
            if first:
                first = False
                if block.startswith(codecs.BOM_UTF8):
                    self.bom, block = True, block[len(codecs.BOM_UTF8):]
            lines = block.splitlines(keepends=True)
            number = self.count
            if b"\0" in block or ESCAPED_IN_BYTES.search(block):
                for i, line in enumerate(lines, number + 1):
                    if b"\0" in line:
                        self.nul.add(i)
                    if ESCAPED_IN_BYTES.search(line):
                        self.escaped.add(i)
            if block.isascii():
                text = [line.decode("ascii") for line in lines]
            else:
                text = [self._decode(line, i) for i, line in enumerate(lines, number + 1)]
            self.count += len(text)
            if not more:
                self.at_end = True
            if text:
                self.last = text[-1]
            yield text
            if not more:
                return

    def _decode(self, line: bytes, number: int) -> str:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self.fallback.append(number)
            try:
                return line.decode("cp1252")
            except UnicodeDecodeError:
                self.latin1 = True
                return line.decode("latin-1")  # decodes any byte
        if not self.utf8 and not line.isascii():
            self.utf8 = True
        return text

    @property
    def encoding(self) -> str:
        """The encoding found: utf-8(-sig), cp1252 or latin-1, or both kinds for a mixed file."""
        unicode = "utf-8-sig" if self.bom else "utf-8"
        if not self.fallback:
            return unicode
        windows = "latin-1" if self.latin1 else "cp1252"
        return f"{unicode} and {windows}" if self.utf8 else windows


def _looks_like_rows(delimiter: str) -> re.Pattern[str]:
    """A line break, then a line with ``delimiter`` and an email address: a swallowed row."""
    d = re.escape(delimiter)
    return re.compile(
        rf"[\r\n](?=[^\r\n]*{d})[^\r\n]*?[^\s@\"',;]@[\w-]+(?:\.[\w-]+)+", re.UNICODE)


def _quote_left_open(last_line: str) -> bool:
    """True if a line that starts inside a quoted field still ends inside one.

    Each quote toggles in and out of the field (a doubled quote toggles twice).
    """
    return last_line.count('"') % 2 == 0


@dataclass
class CsvRows:
    """An open CSV file: its encoding, delimiter, columns, and rows with line numbers.

    ``rows`` yields (first line of the record, cells, problem): ``problem`` is None
    for a good row, else why it must be rejected (a NUL byte, a quote never closed).
    ``fallback_lines`` fills, as rows are read, with the lines that were not UTF-8.
    """

    path: Path
    encoding: str
    delimiter: str
    columns: Columns
    header: list[str]
    rows: Iterator[tuple[int, list[str], str | None]]  # blank lines left out
    fallback_lines: list[int] = field(default_factory=list)
    encoding_of: Callable[[], str] | None = None  # the final encoding, once read


def open_csv(
    path: Path, on_bytes: Callable[[int], None] | None = None
) -> tuple[CsvRows, Callable[[], None]]:
    """Open a CSV (or .xlsx) export for reading; returns the rows and a function closing it."""
    if not path.is_file():
        raise NewsletterError(f"{path}: no such file.", hint="Check the path and try again.")
    with path.open("rb") as peek:
        magic = peek.read(4)
    if magic == b"PK\x03\x04" or path.suffix.lower() in (".xlsx", ".xlsm"):
        # Imported here: openpyxl takes a while to load and only workbooks need it.
        from .xlsxfiles import read_xlsx

        return _open_workbook(path, *read_xlsx(path))
    lines = _Lines(path.open("rb"), on_bytes)
    text = iter(lines)
    first_line = next((line for line in text if line.strip()), "")
    lines.close()
    if not first_line:
        raise NewsletterError(f"{path}: the file is empty.", hint="Export it again.")
    delimiter = detect_delimiter(first_line)
    lines = _Lines(path.open("rb"), on_bytes)
    reader = csv.reader(lines, delimiter=delimiter)
    first_row: list[str] = []
    first_start = 1
    try:
        while not any(cell.strip() for cell in first_row):
            first_start = reader.line_num + 1
            first_row = next(reader)
        columns = find_columns(path, first_row)
    except csv.Error as exc:
        lines.close()
        raise NewsletterError(
            f"{path}, line {first_start}: not readable as CSV ({exc})."
        ) from None
    except BaseException:
        lines.close()
        raise
    swallowed = _looks_like_rows(delimiter)

    def problem_of(start: int, end: int, cells: list[str]) -> str | None:
        """Why the record on lines start..end must be rejected, if it must."""
        span = range(start, end + 1)
        if lines.nul and not lines.nul.isdisjoint(span):
            line = min(lines.nul.intersection(span))
            return (f"line {line} holds a NUL byte (\\0), which would cut the row short; "
                    "remove it and import again")
        if end > start and (
            any(swallowed.search(cell) for cell in cells)
            or (lines.at_end and end == lines.count and _quote_left_open(lines.last))
        ):
            return (f"a quote (\") opened on line {start} is never closed, so lines "
                    f"{start + 1}-{end} were read into this row; close the quote and "
                    "import again")
        return None

    def rows() -> Iterator[tuple[int, list[str], str | None]]:
        if not columns.has_header:
            yield first_start, first_row, problem_of(first_start, reader.line_num, first_row)
        start = reader.line_num + 1
        nul, escaped = lines.nul, lines.escaped
        try:
            for cells in reader:
                end = reader.line_num
                problem = None
                if end > start or nul or escaped:  # rare: most rows skip all of this
                    problem = problem_of(start, end, cells)
                    if escaped and not escaped.isdisjoint(range(start, end + 1)):
                        cells = [unescape(cell) for cell in cells]
                if any(cells):  # blank lines and rows of empty cells are skipped
                    yield start, cells, problem
                start = end + 1
        except csv.Error as exc:
            raise NewsletterError(
                f"{path}, line {start}: not readable as CSV ({exc}).",
                hint="Fix that line (often a quote that is never closed) and run the import "
                "again; rows before it are already imported.",
            ) from None

    header = [unescape(cell) for cell in first_row] if columns.has_header else []
    table = CsvRows(path, "utf-8-sig" if lines.bom else "utf-8", delimiter, columns, header,
                    rows(), lines.fallback, lambda: lines.encoding)
    return table, lines.close


def _open_workbook(
    path: Path, numbered: Iterator[tuple[int, list[str]]], close: Callable[[], None]
) -> tuple[CsvRows, Callable[[], None]]:
    """A workbook's rows as CsvRows: line numbers are the sheet's row numbers."""
    try:
        first_start, first_row = next(
            ((n, cells) for n, cells in numbered if any(c.strip() for c in cells)),
            (1, []))
        if not first_row:
            raise NewsletterError(f"{path}: the first sheet is empty.", hint="Export it again.")
        columns = find_columns(path, first_row)
    except BaseException:
        close()
        raise

    def rows() -> Iterator[tuple[int, list[str], str | None]]:
        if not columns.has_header:
            yield first_start, first_row, None
        for number, cells in numbered:
            if any(cells):
                yield number, cells, None

    header = first_row if columns.has_header else []
    return CsvRows(path, "xlsx", "", columns, header, rows()), close
