"""Build the web archive: one page per published issue, the index, 404, feed, sitemap, search.

Builds are incremental. A manifest in the project's .newsletter/ folder (never in
the published DIR: it names drafts) records a hash of every input
(issue file bytes, templates, newsletter.toml, this code) and, per issue page, a key
of everything that page shows; a rebuild re-renders only pages whose key changed
(the edited issue, and its neighbours when their previous/next link text changed).
The index, feed, sitemap and search index are regenerated whenever a page changes.
Every file is written whole (temporary file, then rename), the manifest last.
Pages are rendered by .pages; the build state is kept by .manifest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import IssueFileError, NewsletterError
from ..files import atomic_write
from ..issue import Issue, IssueModel, load_issue
from ..project import Project
from . import search as search_module
from .manifest import (
    DEFAULT_OUT,
    FORMAT,
    _load_manifest,
    _sha,
    manifest_path,
    site_key,
    write_if_changed,
)
from .pages import IssueMeta, Published, _Renderer, _site_files
from .publishing import left_out_reason

PARALLEL_PARSE_MIN = 48
SEARCH_BLOCK_YEARS = 3

SCRATCH = ".archive-tmp"

ProgressCallback = Callable[[str, int, int], None]


# --- reading issue files -----------------------------------------------------------------


def _parse(path: Path) -> tuple[IssueModel | None, str]:
    """Load one issue file (in a worker process); (model, "") or (None, error message)."""
    try:
        return load_issue(path).model, ""
    except IssueFileError as exc:
        return None, exc.message


def _parse_all(
    paths: list[Path], progress: ProgressCallback | None
) -> dict[Path, tuple[IssueModel | None, str]]:
    """Parse issue files, on every CPU when there are many (YAML parsing is the slow part)."""
    results: dict[Path, tuple[IssueModel | None, str]] = {}
    workers = os.cpu_count() or 1
    if len(paths) < PARALLEL_PARSE_MIN or workers < 2:
        parsed: Iterable[tuple[IssueModel | None, str]] = map(_parse, paths)
        pool = None
    else:
        pool = ProcessPoolExecutor(max_workers=workers)
        parsed = pool.map(_parse, paths, chunksize=max(1, len(paths) // (workers * 8)))
    try:
        for done, (path, result) in enumerate(zip(paths, parsed, strict=True), 1):
            results[path] = result
            if progress:
                progress("Reading issue files", done, len(paths))
    finally:
        if pool:
            pool.shutdown()
    return results


@contextlib.contextmanager
def _exclusive(out_dir: Path) -> Iterator[None]:
    """Hold a lock on ``out_dir`` so two builds never write into it at once."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks on folders
        yield
        return
    fd = os.open(out_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise NewsletterError(
                f"Another `newsletter archive build` is writing into {out_dir}.",
                hint="Wait for it to finish, then run `newsletter archive build` again.",
            ) from None
        yield
    finally:
        os.close(fd)  # also releases the lock


# --- the report --------------------------------------------------------------------------


@dataclass
class BuildReport:
    """What a build did: pages written, skipped and removed, and how long each step took."""

    out_dir: Path
    published: int = 0
    drafts: int = 0
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (issue name, why)
    pages_written: list[str] = field(default_factory=list)
    pages_skipped: int = 0
    pages_removed: list[str] = field(default_factory=list)
    files_written: list[str] = field(default_factory=list)
    issues_parsed: int = 0
    search_pages: int | None = None
    search_shards: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        return sum(self.timings.values())


class _Timer:
    def __init__(self, report: BuildReport) -> None:
        self.report = report
        self.last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.report.timings[step] = self.report.timings.get(step, 0.0) + now - self.last
        self.last = now


# --- the build ---------------------------------------------------------------------------


def _numbers(metas: list[IssueMeta]) -> dict[str, int]:
    # The same rule as newsletter.issue.issue_number, in one pass instead of one per file.
    numbers: dict[str, int] = {}
    number = 0
    for meta in sorted(metas, key=lambda m: m.file):
        number = meta.explicit_number if meta.explicit_number is not None else number + 1
        numbers[meta.file] = number
    return numbers


def _page_path(name: str) -> str:
    return f"issues/{name}/index.html"


def _remove_page(out_dir: Path, name: str) -> bool:
    page = out_dir / _page_path(name)
    existed = page.exists()
    page.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty (someone else's files) or already gone
        page.parent.rmdir()
    return existed


def build_archive(
    project: Project,
    out_dir: Path | None = None,
    *,
    search: bool = True,
    progress: ProgressCallback | None = None,
    sent: Collection[str] = (),
    today: dt.date | None = None,
) -> BuildReport:
    """Build (or bring up to date) the static web archive in ``out_dir`` (default: site/).

    Publishes only issues sent to a list (``sent``: their names) or dated before
    ``today`` (default: today in the newsletter's time zone); drafts never (see
    .publishing). A page published earlier for an issue now left out (or deleted)
    is removed. Raises NewsletterError, before writing anything,
    when an issue file has errors.
    """
    out_dir = (out_dir or project.root / DEFAULT_OUT).resolve()
    if out_dir == project.root.resolve() or out_dir in project.root.resolve().parents:
        raise NewsletterError(
            f"{out_dir} holds the project itself; the archive needs a folder of its own.",
            hint="Build into a separate folder, e.g. `newsletter archive build -o site`.",
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(out_dir):
        # Temporary files live in one folder, so a build that was killed leaves
        # nothing stray beside the pages; the next build clears it.
        scratch = out_dir / SCRATCH
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        try:
            day = today or dt.datetime.now(project.config.zone).date()
            return _build(project, out_dir, search, progress, scratch, set(sent), day)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _build(
    project: Project,
    out_dir: Path,
    search: bool,
    progress: ProgressCallback | None,
    scratch: Path,
    sent: set[str],
    today: dt.date,
) -> BuildReport:
    report = BuildReport(out_dir)
    timer = _Timer(report)
    renderer = _Renderer(project)
    manifest_file = manifest_path(project, out_dir)
    old = _load_manifest(manifest_file, out_dir)
    key = site_key(project)
    same_site = old.get("site_key") == key
    old_files: dict[str, Any] = old.get("files", {}) if same_site else {}
    old_pages: dict[str, Any] = old.get("pages", {})

    # 1. Read every issue file; parse only the ones whose bytes changed.
    metas: dict[str, IssueMeta] = {}
    paths: dict[str, Path] = {}
    to_parse: list[Path] = []
    shas: dict[Path, str] = {}
    for path in project.issue_files():
        if path.stem in paths:
            raise NewsletterError(
                f"{paths[path.stem].name} and {path.name} would both be published as "
                f"issues/{path.stem}/.",
                hint=f"Rename or delete one of them in {project.issues_dir}.",
            )
        paths[path.stem] = path
        sha = _sha(path.read_bytes())
        shas[path] = sha
        cached = old_files.get(path.name)
        if cached and cached.get("sha") == sha:
            metas[path.stem] = IssueMeta(**cached)
        else:
            to_parse.append(path)
    timer.lap("read")
    models: dict[str, IssueModel] = {}
    errors = []
    for path, (model, error) in _parse_all(to_parse, progress).items():
        if model is None:
            errors.append(error)
            continue
        models[path.stem] = model
        metas[path.stem] = IssueMeta.of(path, shas[path], model)
    report.issues_parsed = len(to_parse)
    if errors:
        raise IssueFileError(
            "The archive was not built; fix these issue files first:\n" + "\n".join(errors),
            hint="Run `newsletter check FILE` on each file named above.",
        )
    timer.lap("parse")

    numbers = _numbers(list(metas.values()))
    for meta in metas.values():
        reason = left_out_reason(meta.name, dt.date.fromisoformat(meta.date), meta.draft,
                                 sent, today)
        if reason:
            report.left_out.append((meta.name, reason))
    left_out = {name for name, _ in report.left_out}
    published = sorted(
        (Published(meta, numbers[meta.file]) for meta in metas.values()
         if meta.name not in left_out),
        key=lambda p: (p.meta.date, p.name),
    )
    report.left_out.sort()
    report.published = len(published)
    report.drafts = sum(1 for meta in metas.values() if meta.draft)

    def issue(entry: Published) -> Issue:
        if entry.name not in models:
            models[entry.name] = _parse_checked(paths[entry.name])
            report.issues_parsed += 1
        return Issue(paths[entry.name], models[entry.name], entry.number)

    # 2. Issue pages whose inputs changed.
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    pages: dict[str, Any] = {}
    plan: list[tuple[Published, Published | None, Published | None]] = []
    for index, entry in enumerate(published):
        older = published[index - 1] if index > 0 else None
        newer = published[index + 1] if index + 1 < len(published) else None
        # The content (what search and the feed see), then the neighbour links around it.
        content_key = _sha(key, entry.meta.sha, str(entry.number))
        page_key = _sha(
            content_key,
            *(f"{n.name}\0{n.meta.subject}" if n else "-" for n in (older, newer)),
        )
        before = old_pages.get(entry.name, {})
        updated = before.get("updated")
        if before.get("sha") not in (None, entry.meta.sha) and now.date() > entry.date:
            updated = now.isoformat()  # corrected after it went out: feed readers refetch
        pages[entry.name] = {
            "key": page_key, "content": content_key, "sha": entry.meta.sha, "updated": updated
        }
        if before.get("key") == page_key and (out_dir / _page_path(entry.name)).exists():
            report.pages_skipped += 1
        else:
            plan.append((entry, older, newer))
    for done, (entry, older, newer) in enumerate(plan, 1):
        html = renderer.issue_page(issue(entry), older, newer)
        atomic_write(out_dir / _page_path(entry.name), html.encode("utf-8"), temp_dir=scratch)
        report.pages_written.append(_page_path(entry.name))
        if progress:
            progress("Writing issue pages", done, len(plan))
    for name in sorted(set(old_pages) - set(pages)):
        if _remove_page(out_dir, name):
            report.pages_removed.append(_page_path(name))
    timer.lap("pages")

    # 3. Search: Pagefind has no incremental mode, so the index is split into bundles
    # of three calendar years (fixed, so a new year never reshuffles them), and a
    # rebuild indexes only the bundles whose pages changed. Smaller bundles would
    # rebuild quicker still, but readers download the search engine once per bundle.
    shards = _shards(published)
    search_keys = {
        shard: _sha(*(f"{page}:{pages[page.split('/')[1]]['content']}" for page in shard_pages))
        for shard, shard_pages in shards.items()
    }
    old_search: dict[str, str] = old.get("search") or {}
    if search:
        changed = {
            shard for shard, shard_key in search_keys.items()
            if old_search.get(shard) != shard_key
            or not search_module.bundle_exists(out_dir, shard)
        }
        if changed or set(old_search) - set(shards):
            if progress:
                progress("Indexing for search", 0, 1)
            report.search_pages = search_module.index_shards(out_dir, shards, changed)
            report.search_shards = sorted(changed)
    timer.lap("search")

    # 4. Site-wide files, regenerated every time (cheap), written only when different.
    feed_cache: dict[str, Any] = {}
    old_feed: dict[str, Any] = old.get("feed") or {}

    def feed_content(entry: Published) -> str:
        content_key = pages[entry.name]["content"]
        cached = old_feed.get(entry.name)
        content = (cached["content"] if cached and cached.get("key") == content_key
                   else renderer.content_html(issue(entry)))
        feed_cache[entry.name] = {"key": content_key, "content": content}
        return content

    bundles = [search_module.bundle_path(shard) for shard in shards
               if search_module.bundle_exists(out_dir, shard)]
    site_files = _site_files(renderer, published, pages, feed_content, bundles)
    for relative, data in site_files.items():
        if write_if_changed(out_dir / relative, data, scratch):
            report.files_written.append(relative)
    timer.lap("index, feed, sitemap")

    _publish_media(project, out_dir, published, scratch, report)
    timer.lap("photos")

    manifest = {
        "format": FORMAT,
        "site_key": key,
        "files": {meta.file: asdict(meta) for meta in metas.values()},
        "pages": pages,
        "search": search_keys if search else {
            shard: value for shard, value in old_search.items() if shard in shards
        },
        "feed": feed_cache,
    }
    manifest_data = json.dumps(manifest, indent=1, sort_keys=True).encode()
    atomic_write(manifest_file, manifest_data)
    timer.lap("manifest")
    return report


# A photo the studio stored: media/<20 hex digits of its content's hash>.<type>.
_MEDIA_REFERENCE = re.compile(r"/media/([0-9a-f]{20}\.(?:jpg|png|webp|gif))\b")


def _publish_media(project: Project, out_dir: Path, published: list[Published],
                   scratch: Path, report: BuildReport) -> None:
    """Copy into DIR/media/ the studio's photos that published issues use, and only those:
    a photo of an issue not yet published must not be public before it."""
    source = project.root / "media"
    wanted: set[str] = set()
    for entry in published:
        text = (project.issues_dir / entry.meta.file).read_text(encoding="utf-8")
        wanted.update(_MEDIA_REFERENCE.findall(text))
    target = out_dir / "media"
    for name in sorted(wanted):
        photo = source / name
        if (photo.is_file() and not photo.is_symlink()
                and write_if_changed(target / name, photo.read_bytes(), scratch)):
            report.files_written.append(f"media/{name}")
    if target.is_dir():
        for old in target.iterdir():
            if old.name not in wanted and old.is_file():
                old.unlink()


def _shards(published: list[Published]) -> dict[str, list[str]]:
    """Search bundles by fixed blocks of years, newest first: {"2025-2027": [pages], …}."""
    shards: dict[str, list[str]] = {}
    for entry in reversed(published):
        start = entry.date.year - entry.date.year % SEARCH_BLOCK_YEARS
        shards.setdefault(f"{start}-{start + SEARCH_BLOCK_YEARS - 1}", []).append(
            _page_path(entry.name)
        )
    return shards


def _parse_checked(path: Path) -> IssueModel:
    model, error = _parse(path)
    if model is None:
        raise IssueFileError(error, hint=f"Run `newsletter check {path}`.")
    return model
