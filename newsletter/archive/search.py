"""Search for the archive with Pagefind: an index the browser searches, no server needed.

The binary comes with the ``pagefind[extended]`` package from PyPI and runs offline.
It is run directly (one process reading the built pages) rather than through
pagefind's Python API, whose service answers one message per 0.1 s poll.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from ..errors import NewsletterError

BUNDLE = "pagefind"
_INDEXED = re.compile(r"Indexed (\d+) pages?")


def pagefind_binary() -> Path:
    """The Pagefind executable (PAGEFIND_BINARY_PATH, else the one installed from PyPI)."""
    try:
        from pagefind.service import get_executable
    except ImportError:  # pragma: no cover - a dependency of the package
        get_executable = None  # type: ignore[assignment]
    binary = get_executable() if get_executable else None
    if binary is None or not binary.exists():
        raise NewsletterError(
            "Pagefind, which builds the archive's search, is not installed.",
            hint="Install it with `pip install 'pagefind[extended]'`, or build without "
            "search: `newsletter archive build --no-search`.",
        )
    return binary


def bundle_exists(out_dir: Path) -> bool:
    """Whether ``out_dir`` already has a search bundle."""
    return (out_dir / BUNDLE / "pagefind.js").is_file()


def index_site(out_dir: Path) -> int:
    """Index the issue pages in ``out_dir`` into out_dir/pagefind/; return the page count.

    Pages mark what is searchable with data-pagefind-body, so only issue pages are
    indexed. The new bundle is written beside the old one and swapped in by renames,
    so the live bundle is never half-written.
    """
    fresh = out_dir / f".{BUNDLE}-new"
    stale = out_dir / f".{BUNDLE}-old"
    for leftover in (fresh, stale):
        shutil.rmtree(leftover, ignore_errors=True)
    result = subprocess.run(
        [str(pagefind_binary()), "--site", str(out_dir), "--output-path", str(fresh)],
        capture_output=True,
        text=True,
        cwd=out_dir,
        check=False,
    )
    if result.returncode != 0:
        shutil.rmtree(fresh, ignore_errors=True)
        output = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise NewsletterError(
            "Pagefind could not index the archive:\n  " + "\n  ".join(output),
            hint="Run `newsletter archive build` again; if it fails the same way, build "
            "with --no-search and report the message above.",
        )
    live = out_dir / BUNDLE
    if live.exists():
        live.rename(stale)
    fresh.rename(live)
    shutil.rmtree(stale, ignore_errors=True)
    counts = _INDEXED.findall(result.stdout)
    return int(counts[-1]) if counts else 0
