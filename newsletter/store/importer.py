"""Importing subscribers from a CSV export into one list, fast and safely.

Rows are read, checked and deduplicated in Python, then written by a second
thread in chunks of ``chunk_size`` rows, each chunk in its own transaction with
a few bulk statements (no ORM objects per row). A chunk is all-or-nothing, and importing a
row that is already there changes nothing, so after a failure the same command
simply resumes: rows already imported count as unchanged the second time.
"""

from __future__ import annotations

import csv
import json
import sys
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from ..dbengine import make_engine
from ..emails import InvalidEmail, normalise_email
from ..errors import NewsletterError
from .bulkwrite import _apply_chunk, _ChangedMeanwhile, _ChunkResult, _Row
from .cells import neutralise
from .consent import ERASED_REASON
from .csvfiles import Columns, open_csv
from .erasure import count_erasures, erased_checker
from .leavers import Leaver, StatusReader, record_leavers
from .models import Source, email_key, utcnow
from .subscribers import get_list

CHUNK_SIZE = 5000
REPORT_LIMIT = 1000  # rejected/skipped rows kept in the report (all go to --rejects)
_RETRIES = 3  # a chunk is retried if another writer added one of its addresses meanwhile
_SWITCH_INTERVAL = 0.0005  # seconds; see import_csv
_POSTGRES_WRITERS = 2  # chunks saved at once on PostgreSQL (see _Run)


@dataclass(frozen=True)
class ReportRow:
    """A row not imported: its line in the file, its address and why."""

    line: int
    email: str
    reason: str


@dataclass
class ImportReport:
    """What an import did. ``rejects``/``skips`` hold the first REPORT_LIMIT rows."""

    path: Path
    list_slug: str
    encoding: str = ""
    delimiter: str = ""
    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    skipped: int = 0
    rejects: list[ReportRow] = field(default_factory=list)
    skips: list[ReportRow] = field(default_factory=list)
    # Lines that were not UTF-8 and were read as Windows-1252 (check their accents).
    fallback_lines: list[int] = field(default_factory=list)


class _RejectsFile:
    """The --rejects CSV: line, reason, then the row as it was in the file.

    Cells a spreadsheet would run as formulas are neutralised (see .cells).
    """

    def __init__(self, handle: TextIO | None, header: Sequence[str], width: int) -> None:
        self.writer = csv.writer(handle, quoting=csv.QUOTE_ALL) if handle else None
        if self.writer:
            names = list(header) or [f"column {i + 1}" for i in range(width)]
            self.writer.writerow(["line", "reason", *map(neutralise, names)])

    def write(self, line: int, reason: str, cells: list[str]) -> None:
        if self.writer:
            self.writer.writerow([line, neutralise(reason), *map(neutralise, cells)])


def _name_reader(columns: Columns) -> Callable[[list[str]], str]:
    """A function giving a row's name: the name column, else first and last name."""
    name, first, last = columns.name, columns.first, columns.last

    def cell(cells: list[str], index: int | None) -> str:
        return cells[index].strip() if index is not None and index < len(cells) else ""

    def read(cells: list[str]) -> str:
        if name is not None and (value := cell(cells, name)):
            return value
        return f"{cell(cells, first)} {cell(cells, last)}".strip()

    def first_last(cells: list[str]) -> str:  # the common Mailchimp case, made cheap
        if first is not None and last is not None and len(cells) > width:
            return f"{cells[first].strip()} {cells[last].strip()}".strip()
        return read(cells)

    if name is None and first is None and last is None:
        return lambda cells: ""
    if name is None and first is not None and last is not None:
        width = max(first, last)
        return first_last
    return read


def _attributes_reader(columns: Columns) -> Callable[[list[str]], dict[str, Any] | None]:
    """A function giving a row's attributes: extra columns, plus our export's JSON column."""
    extra, json_index = columns.extra, columns.attributes

    def read(cells: list[str]) -> dict[str, Any] | None:
        attributes: dict[str, Any] = {}
        if json_index is not None and json_index < len(cells) and cells[json_index].strip():
            try:
                loaded = json.loads(cells[json_index])
            except ValueError:
                loaded = None
            if not isinstance(loaded, dict):
                raise ValueError("attributes: expected a JSON object like {\"City\": \"Berlin\"}")
            attributes.update(loaded)
        for i, header in extra:
            if i < len(cells) and (value := cells[i].strip()):
                attributes[header] = value
        return attributes or None

    return read


class _EarlierChunkFailed(Exception):
    """The chunk before this one failed, so this one is rolled back (never reported)."""


class _Run:
    """One import in progress: the reading side feeds chunks to writer threads.

    While a writer thread saves chunk N (SQLite does its B-tree work without
    holding the GIL; PostgreSQL in its own server process), this thread reads and
    checks chunk N+1. On PostgreSQL a second writer saves chunk N+1 while N is
    saved, on a connection of its own, so the server works on two cores; a chunk
    commits only after the one before it did, and is rolled back if that one failed.
    Chunks are reported strictly in order and a failed chunk stops the import, so what
    is saved is always "every row before line L". (Two chunks never touch the same
    subscriber: addresses repeated in the file are rejected as duplicates first.)
    """

    def __init__(self, engine: Engine, list_id: int, report: ImportReport,
                 rejects: _RejectsFile, *, resubscribe: bool, source: str,
                 dry_run: bool = False, erasures_seen: int | None = None) -> None:
        self.engine = engine
        self.erasures_seen = erasures_seen
        self.dry_run = dry_run
        self.own_engine: Engine | None = None
        database = engine.url.database or ""
        if engine.dialect.name == "sqlite" and database not in ("", ":memory:") and (
            "memory" not in str(engine.url.query)
        ):
            # The import only writes references it has just checked, so SQLite's
            # foreign-key look-ups (four per row) are skipped on its own connection.
            self.own_engine = make_engine(
                engine.url.render_as_string(hide_password=False), foreign_keys=False)
            self.engine = self.own_engine
        self.list_id = list_id
        self.report = report
        self.rejects = rejects
        self.resubscribe = resubscribe
        self.source = source
        self.pending: list[tuple[int, str, list[str]]] = []  # (line, reason, cells)
        # SQLite has one writer at a time anyway.
        self.writers = 1 if engine.dialect.name == "sqlite" else _POSTGRES_WRITERS
        self.executor = ThreadPoolExecutor(self.writers, thread_name_prefix="import-writer")
        self.in_flight: deque[tuple[Future[_ChunkResult], int, int]] = deque()
        self.unflushed = False  # PostgreSQL: the latest saved chunk did not wait for the disk
        self.saved_through = 0  # every row up to this line is saved

    def reject(self, line: int, email: str, reason: str, cells: list[str]) -> None:
        self.report.rejected += 1
        if len(self.report.rejects) < REPORT_LIMIT:
            self.report.rejects.append(ReportRow(line, email, reason))
        self.pending.append((line, reason, cells))

    def skip(self, line: int, email: str, reason: str, cells: list[str]) -> None:
        self.report.skipped += 1
        if len(self.report.skips) < REPORT_LIMIT:
            self.report.skips.append(ReportRow(line, email, reason))
        self.pending.append((line, reason, cells))

    def _write(self, rows: list[_Row], earlier: Future[_ChunkResult] | None,
               wait_for_disk: bool) -> _ChunkResult:
        for attempt in range(_RETRIES):
            try:
                with self.engine.connect() as conn, conn.begin() as transaction:
                    result = _apply_chunk(
                        conn, self.list_id, self.report.list_slug, rows,
                        resubscribe=self.resubscribe, source=self.source,
                        detail=self.report.path.name, now=utcnow(),
                        wait_for_disk=wait_for_disk, erasures_seen=self.erasures_seen,
                    )
                    if self.dry_run:
                        # Each chunk is undone; addresses repeated across chunks were
                        # already rejected as duplicates, so the counts stay right.
                        transaction.rollback()
                    elif earlier is not None and earlier.exception() is not None:
                        raise _EarlierChunkFailed  # rolls back: saved stays "rows before L"
                    return result
            except (IntegrityError, _ChangedMeanwhile):
                if attempt == _RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def submit(self, rows: list[_Row], *, last: bool = False) -> None:
        """Start saving ``rows``, once fewer than ``writers`` chunks are being saved.

        On PostgreSQL only the ``last`` chunk's commit waits for the disk (about 7 ms a
        chunk otherwise). This is safe: chunks commit in order and PostgreSQL's WAL is
        flushed in order, so a server crash can lose only the latest chunks, and what
        is kept is still "every row before line L", which the same command resumes
        (importing a row again changes nothing; after a crash, "rows before line L are
        saved" may overstate by those chunks until then). Without a crash nothing is
        lost, and the last chunk's flush (or :meth:`flush`) makes every earlier chunk
        durable before the report.
        """
        while len(self.in_flight) >= self.writers:
            self._collect_oldest()
        if rows:
            earlier = self.in_flight[-1][0] if self.in_flight else None
            future = self.executor.submit(self._write, rows, earlier, last)
            self.unflushed = self.writers > 1 and not last and not self.dry_run
            self.in_flight.append((future, rows[0][0], rows[-1][0]))

    def _collect_oldest(self) -> None:
        """Wait for the oldest chunk being saved; report it and the rejects up to its end."""
        future, first_line, last_line = self.in_flight.popleft()
        try:
            result = future.result()
        except BaseException as exc:
            exc.add_note(f"line {first_line}")
            raise
        report = self.report
        report.added += result.added
        report.updated += result.updated
        report.unchanged += result.unchanged
        for skipped in result.skips:
            self.skip(*skipped)
        self.saved_through = last_line
        self._write_rejects(last_line)

    def flush(self) -> None:
        """Wait until every saved chunk is on disk (when the last chunk was empty)."""
        if self.unflushed:
            with self.engine.begin() as conn:  # commits an id: waits for all WAL before it
                conn.exec_driver_sql("SELECT pg_current_xact_id()")
            self.unflushed = False

    def collect(self, through: int) -> None:
        """Wait for every chunk being saved; write the rejects up to line ``through``."""
        while self.in_flight:
            self._collect_oldest()
        self._write_rejects(through)

    def _write_rejects(self, through: int) -> None:
        done = sorted(item for item in self.pending if item[0] <= through)
        self.pending = [item for item in self.pending if item[0] > through]
        for line, reason, cells in done:
            self.rejects.write(line, reason, cells)

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        if self.own_engine is not None:
            self.own_engine.dispose()


def _record(engine: Engine, list_slug: str, path: Path,
            leavers: list[tuple[Leaver, list[str]]], run: _Run) -> None:
    """Record the file's leavers the database does not know yet (see .leavers)."""
    with Session(engine) as session, session.begin():
        outcome = record_leavers(session, list_slug, [leaver for leaver, _ in leavers],
                                 path.name)
    for (leaver, recorded), (_, cells) in zip(outcome, leavers, strict=True):
        reason = (
            f"recorded as {leaver.said} (status in the file): never mailed, and later "
            "imports skip them" if recorded
            else f"skipped: status in the file is {leaver.said!r}")
        run.skip(leaver.line, leaver.email, reason, cells)
    run.collect(through=sys.maxsize)


def import_csv(
    engine: Engine,
    path: Path,
    list_slug: str,
    *,
    resubscribe: bool = False,
    rejects: TextIO | None = None,
    chunk_size: int = CHUNK_SIZE,
    progress: Callable[[int, int], None] | None = None,
    source: Source | str = Source.IMPORT,
    dry_run: bool = False,
) -> ImportReport:
    """Import the subscribers in the CSV file ``path`` into the list ``list_slug``.

    Each address is checked and normalised (:func:`normalise_email`) and
    deduplicated within the file (the first row wins) and against the database.
    New addresses are added as subscribed; a non-empty name in the file replaces
    the stored one and extra columns are merged into ``attributes``. People who
    unsubscribed from the list are skipped unless ``resubscribe``; bounced,
    complained and blocklisted addresses are always skipped. A row whose status
    columns say the person left (as :mod:`.export` writes them) is never mailed: if
    the database does not know the person, they are recorded with that status
    (:mod:`.leavers`), so a CSV round trip keeps every leaver a leaver.

    ``rejects`` (an open text file) receives every rejected and skipped row with
    its line number and reason. ``progress(bytes_read, bytes_total)`` is called
    as the file is read. With ``dry_run`` every chunk is written and then rolled
    back: the report says what the import would do, and nothing is kept. Raises
    NewsletterError for an unknown list or an unreadable file; rows saved before an
    error stay, and running the same import again completes it.
    """
    with Session(engine) as session:
        list_id = get_list(session, list_slug).id
        was_erased = erased_checker(session)  # the consent rule: never add them back
        erasures_seen = count_erasures(session)  # each chunk looks again (see _apply_chunk)
    total = path.stat().st_size if path.is_file() else 0
    on_bytes = (lambda done: progress(done, total)) if progress else None
    table, close = open_csv(path, on_bytes)
    report = ImportReport(path, list_slug, table.encoding, table.delimiter)
    columns = table.columns
    try:
        run = _Run(engine, list_id, report,
                   _RejectsFile(rejects, table.header, columns.email + 1),
                   resubscribe=resubscribe, source=Source(source).value, dry_run=dry_run,
                   erasures_seen=erasures_seen)
    except BaseException:
        close()
        raise
    email_index, extra = columns.email, columns.extra
    name_of = _name_reader(columns)
    attributes_of = _attributes_reader(columns)
    statuses = StatusReader(table.header, columns.statuses) if columns.statuses else None
    leavers: list[tuple[Leaver, list[str]]] = []
    with_attributes = bool(extra) or columns.attributes is not None
    seen: dict[str, int] = {}
    chunk: list[_Row] = []
    # The writer thread takes the GIL back after each SQLite statement; with Python's
    # default 5 ms switch interval it would mostly wait for this (busy) thread.
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(min(switch_interval, _SWITCH_INTERVAL))
    try:
        for line, cells, problem in table.rows:
            report.rows += 1
            raw = cells[email_index] if email_index < len(cells) else ""
            if problem is not None:
                run.reject(line, raw.strip()[:200], problem, cells)
                continue
            try:
                email = normalise_email(raw)
            except InvalidEmail as exc:
                run.reject(line, raw.strip(), f"invalid email address: {exc}", cells)
                continue
            key = email_key(email)
            first = seen.get(key)
            if first is not None:
                run.reject(line, email, f"duplicate of line {first}", cells)
                continue
            seen[key] = line
            if was_erased is not None and was_erased(email):
                run.reject(line, email, ERASED_REASON, cells)
                continue
            if statuses and (leaver := statuses.leaver(line, email, name_of(cells), cells)):
                leavers.append((leaver, cells))
                continue
            try:
                attributes = attributes_of(cells) if with_attributes else None
            except ValueError as exc:
                run.reject(line, email, str(exc), cells)
                continue
            chunk.append((line, email, key, name_of(cells), attributes, cells))
            if len(chunk) >= chunk_size:
                run.submit(chunk)
                chunk = []
        run.submit(chunk, last=True)
        run.collect(through=sys.maxsize)
        run.flush()
        if leavers:
            _record(engine, list_slug, path, leavers, run)
        if table.encoding_of is not None:
            report.encoding = table.encoding_of()
        report.fallback_lines = table.fallback_lines
    except NewsletterError:
        raise
    except Exception as exc:
        where = next((note for note in getattr(exc, "__notes__", ()) if "line" in note), "")
        # The driver's own words, without the SQL and the rows (personal data).
        reason = str(exc.orig) if isinstance(exc, StatementError) and exc.orig else str(exc)
        raise NewsletterError(
            f"The import of {path} stopped"
            + (f" at {where}" if where else "")
            + f"; every row before it is saved ({report.added} added). Reason: {reason}",
            hint="Fix the cause and run the same import again; it continues where it stopped "
            "(rows already imported count as unchanged).",
        ) from exc
    finally:
        run.close()
        close()
        sys.setswitchinterval(switch_interval)
    return report
