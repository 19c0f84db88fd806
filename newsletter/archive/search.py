"""Search for the archive with Pagefind: an index the browser searches, no server needed.

The binary comes with the ``pagefind[extended]`` package from PyPI and runs offline.
It is run directly rather than through pagefind's Python API, whose service answers
one message per 0.1 s poll.

Pagefind has no incremental mode, so the index is split into one bundle per year
(DIR/pagefind/2021/, …) and the search page merges them (Pagefind's mergeIndex). A
rebuild after one issue changed re-indexes only that issue's year.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import NewsletterError

BUNDLE = "pagefind"
STAGING = ".pagefind-staging"
_INDEXED = re.compile(r"Indexed (\d+) pages?")


def pagefind_binary() -> Path:
    """The Pagefind executable (PAGEFIND_BINARY_PATH, else the one installed from PyPI)."""
    from pagefind.service import get_executable

    binary = get_executable()
    if binary is None or not binary.exists():
        raise NewsletterError(
            "Pagefind, which builds the archive's search, is not installed.",
            hint="Install it with `pip install 'pagefind[extended]'`, or build without "
            "search: `newsletter archive build --no-search`.",
        )
    return binary


def bundle_path(shard: str) -> str:
    """Where one shard's bundle lives, relative to the site root."""
    return f"{BUNDLE}/{shard}/"


def bundle_exists(out_dir: Path, shard: str) -> bool:
    """Whether ``out_dir`` already has the search bundle of ``shard``."""
    return (out_dir / bundle_path(shard) / "pagefind.js").is_file()


def _index_shard(binary: Path, out_dir: Path, shard: str, pages: list[str]) -> int:
    """Index ``pages`` (paths relative to out_dir) into out_dir/pagefind/SHARD/."""
    staging = out_dir / STAGING / shard
    shutil.rmtree(staging, ignore_errors=True)
    for page in pages:
        target = staging / page
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(out_dir / page, target)  # same file, no copy; URLs stay /issues/NAME/
        except OSError:
            shutil.copyfile(out_dir / page, target)
    live = out_dir / bundle_path(shard)
    fresh = live.with_name(f".{shard}-new")
    stale = live.with_name(f".{shard}-old")
    for leftover in (fresh, stale):
        shutil.rmtree(leftover, ignore_errors=True)
    result = subprocess.run(
        [str(binary), "--site", str(staging), "--output-path", str(fresh)],
        capture_output=True, text=True, cwd=out_dir, check=False,
    )
    shutil.rmtree(staging, ignore_errors=True)
    if result.returncode != 0:
        shutil.rmtree(fresh, ignore_errors=True)
        output = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise NewsletterError(
            "Pagefind could not index the archive:\n  " + "\n  ".join(output),
            hint="Run `newsletter archive build` again; if it fails the same way, build "
            "with --no-search and report the message above.",
        )
    # The new bundle is complete before it replaces the old one.
    if live.exists():
        live.rename(stale)
    fresh.rename(live)
    shutil.rmtree(stale, ignore_errors=True)
    counts = _INDEXED.findall(result.stdout)
    return int(counts[-1]) if counts else 0


def index_shards(out_dir: Path, shards: dict[str, list[str]], changed: set[str]) -> int:
    """Re-index the ``changed`` shards, drop bundles of shards that no longer exist.

    ``shards`` maps every shard to its pages (paths relative to ``out_dir``).
    Returns how many pages were indexed.
    """
    root = out_dir / BUNDLE
    if root.is_dir():
        for folder in root.iterdir():
            if folder.is_dir() and folder.name not in shards:
                shutil.rmtree(folder, ignore_errors=True)
    todo = sorted(shard for shard in changed if shard in shards)
    if not todo:
        return 0
    binary = pagefind_binary()
    root.mkdir(parents=True, exist_ok=True)
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(len(todo), os.cpu_count() or 1))) as pool:
            counts = list(pool.map(
                lambda shard: _index_shard(binary, out_dir, shard, shards[shard]), todo
            ))
    finally:
        shutil.rmtree(out_dir / STAGING, ignore_errors=True)
    return sum(counts)
