"""Excel workbooks (.xlsx) through openpyxl: reading rows as text, writing rows safely.

Kept apart so that only commands touching a workbook pay for importing openpyxl.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils.exceptions import InvalidFileException

from ..errors import NewsletterError


def cell_text(value: Any) -> str:
    """A cell's value as the text a CSV export of it would hold."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 44 stored as 44.0: a phone prefix, a rating
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


def read_xlsx(path: Path) -> tuple[Iterator[tuple[int, list[str]]], Callable[[], None]]:
    """The rows of the first sheet as (row number, cells as text); and a close function.

    Formulas give the value Excel last computed, never the formula itself.
    """
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise NewsletterError(
            f"{path}: not readable as an Excel workbook ({exc}).",
            hint="Open it in Excel and save it again as .xlsx, or save it as "
            "'CSV UTF-8' and import that.",
        ) from None
    sheet = book.worksheets[0]

    def rows() -> Iterator[tuple[int, list[str]]]:
        for number, values in enumerate(sheet.iter_rows(values_only=True), 1):
            yield number, [cell_text(value) for value in values]

    return rows(), book.close


def write_xlsx(path: Path, header: Iterable[str], rows: Iterable[Iterable[Any]]) -> int:
    """Write one sheet: ``header`` then ``rows``; returns the number of rows.

    Every text cell is written as text, so ``=HYPERLINK(...)`` in a name is shown,
    never run as a formula.
    """
    book = Workbook(write_only=True)
    sheet = book.create_sheet("subscribers")
    sheet.append(list(header))
    count = 0
    for row in rows:
        cells = []
        for value in row:
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # openpyxl would store "=..." as a formula
            cells.append(cell)
        sheet.append(cells)
        count += 1
    book.save(path)
    return count
