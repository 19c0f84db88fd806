"""Spreadsheet formula injection: neutralising cells we write, undoing it when we read.

A cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
run as a formula by Excel and LibreOffice (``=HYPERLINK("http://evil","Click")``
typed into a sign-up form becomes a live link). Following OWASP, every such cell
we write to CSV gets a leading single quote ``'`` and is quoted; the import
removes that quote again, so an export imports back exactly.
"""

from __future__ import annotations

import re

FORMULA_STARTS = frozenset("=+-@\t\r")
# A neutralised cell somewhere in a line of bytes: the quote, then a formula start.
ESCAPED_IN_BYTES = re.compile(rb"'[=+\-@\t\r]")


def neutralise(cell: str) -> str:
    """``cell`` with a ``'`` in front if a spreadsheet would read it as a formula."""
    return "'" + cell if cell[:1] in FORMULA_STARTS else cell


def unescape(cell: str) -> str:
    """Undo :func:`neutralise`: ``'=x`` -> ``=x``; any other cell is returned as is."""
    return cell[1:] if cell[:1] == "'" and cell[1:2] in FORMULA_STARTS else cell
