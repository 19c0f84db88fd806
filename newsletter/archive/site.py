"""Build the web archive: one page per published issue, the index, 404, feed, sitemap, search.

Builds are incremental. A manifest in the project's .newsletter/ folder (never in
the published DIR: it names drafts) records a hash of every input
(issue file bytes, templates, newsletter.toml, this code) and, per issue page, a key
of everything that page shows; a rebuild re-renders only pages whose key changed
(the edited issue, and its neighbours when their previous/next link text changed).
The index, feed, sitemap and search index are regenerated whenever a page changes.
Every file is written whole (temporary file, then rename), the manifest last.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import time
import unicodedata
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from markupsafe import Markup

from ..config import CONFIG_NAME, Config
from ..errors import IssueFileError, NewsletterError
from ..files import atomic_write
from ..issue import Issue, IssueModel, Item, load_issue
from ..project import Project, default_templates_dir
from ..render import environments, long_date, markdown_text, render_template, template_error
from . import feed as feed_module
from . import search as search_module
from .publishing import left_out_reason

FORMAT = 1
MANIFEST = ".archive-manifest.json"  # where versions before 0.2.0 kept it (public!)
TEMPLATE_DIR = "archive"
PARALLEL_PARSE_MIN = 48
SEARCH_BLOCK_YEARS = 3
DEFAULT_OUT = "site"

ProgressCallback = Callable[[str, int, int], None]


# --- small helpers -----------------------------------------------------------------------


def _sha(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8") if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


SCRATCH = ".archive-tmp"
STATE_DIR = ".newsletter"  # the project's build state: git-ignored, never published


def write_if_changed(path: Path, data: bytes, scratch: Path | None = None) -> bool:
    """Atomically write ``data`` unless the file already holds exactly it. True if written."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    atomic_write(path, data, temp_dir=scratch)
    return True


_NOT_WORD = re.compile(r"[^\w]+", re.UNICODE)


def slugify(text: str, max_length: int = 60) -> str:
    """A readable, stable anchor from a title: lowercase words joined by hyphens.

    Letters of any script are kept (browsers handle them in URL fragments);
    accents on Latin letters are dropped so links stay easy to type.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    slug = _NOT_WORD.sub("-", plain.lower()).strip("-_")
    if len(slug) > max_length:
        slug = slug[:max_length].rsplit("-", 1)[0] or slug[:max_length]
    return slug


def item_anchors(items: Iterable[Item]) -> list[str]:
    """One unique anchor per item, in order (a repeated title gets -2, -3, …)."""
    seen: set[str] = set()
    anchors = []
    for position, item in enumerate(items, 1):
        base = slugify(item.title) or f"item-{position}"
        if base[0].isdigit():
            base = f"item-{base}"
        anchor, n = base, 2
        while anchor in seen:
            anchor, n = f"{base}-{n}", n + 1
        seen.add(anchor)
        anchors.append(anchor)
    return anchors


def _mix(colour: str, other: str, amount: float) -> str:
    """``colour`` moved ``amount`` (0..1) of the way to ``other`` (both #rrggbb)."""
    a = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    b = [int(other[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * amount):02x}" for x, y in zip(a, b, strict=True))


# --- what is known about each issue file -------------------------------------------------


@dataclass(frozen=True)
class IssueMeta:
    """What the index, feed, sitemap and neighbours need; cached per file hash."""

    name: str
    file: str
    sha: str
    explicit_number: int | None
    draft: bool
    date: str
    subject: str
    preheader: str

    @classmethod
    def of(cls, path: Path, sha: str, model: IssueModel) -> IssueMeta:
        return cls(
            name=path.stem,
            file=path.name,
            sha=sha,
            explicit_number=model.number,
            draft=model.draft,
            date=model.date.isoformat(),
            subject=model.subject,
            preheader=model.preheader or "",
        )


@dataclass(frozen=True)
class Published:
    """A published issue: its metadata and its number."""

    meta: IssueMeta
    number: int

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def date(self) -> dt.date:
        return dt.date.fromisoformat(self.meta.date)


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


# --- inputs that affect every page -------------------------------------------------------


def _template_files(project: Project) -> list[Path]:
    files = []
    for folder in (project.templates_dir / TEMPLATE_DIR, default_templates_dir() / TEMPLATE_DIR):
        if folder.is_dir():
            files += sorted(p for p in folder.rglob("*") if p.is_file())
    return files


def site_key(project: Project) -> str:
    """Hash of everything every page depends on: settings, templates and this code."""
    here = Path(__file__).parent
    code = sorted(here.glob("*.py")) + [here.parent / "render.py"]
    parts: list[bytes | str] = [str(FORMAT), (project.root / CONFIG_NAME).read_bytes()]
    for path in _template_files(project) + code:
        parts += [path.name, path.read_bytes()]
    return _sha(*parts)


# --- rendering ---------------------------------------------------------------------------


class _Renderer:
    """Renders archive pages with the project's Jinja2 environment (autoescaped)."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.config = project.config
        self.env = environments(project)[0]
        brand = self.config.brand
        self.common: dict[str, Any] = {
            "config": self.config,
            "brand": brand,
            "subscribe_url": subscribe_url(self.config),
            "dark": {
                "primary": _mix(brand.primary_color, "#ffffff", 0.55),
                "accent": _mix(brand.accent_color, "#ffffff", 0.45),
            },
        }

    def render(self, template: str, **context: Any) -> str:
        return render_template(self.env, f"{TEMPLATE_DIR}/{template}",
                               {**self.common, **context})

    def entries(self, issue: Issue) -> list[tuple[str | None, list[tuple[Item, str]]]]:
        anchors = iter(item_anchors(issue.model.items))
        return [(section, [(item, next(anchors)) for item in items])
                for section, items in issue.sections]

    def item_level(self, issue: Issue) -> int:
        return 3 if any(section for section, _ in issue.sections) else 2

    def issue_page(
        self, issue: Issue, older: Published | None, newer: Published | None
    ) -> str:
        model = issue.model
        image = next(
            ({"url": item.image, "alt": item.image_alt, "large": True}
             for item in model.items if item.image),
            None,
        )
        if image is None and self.config.brand.logo_url:
            image = {"url": self.config.brand.logo_url,
                     "alt": self.config.brand.logo_alt or self.config.name, "large": False}

        def link(other: Published | None) -> dict[str, Any] | None:
            if other is None:
                return None
            return {"href": f"../{other.name}/", "subject": other.meta.subject,
                    "number": other.number}

        return self.render(
            "issue.html.j2",
            root="../../",
            home="../../",
            issue=issue,
            entries=self.entries(issue),
            item_level=self.item_level(issue),
            issue_date=long_date(model.date),
            canonical=self.config.issue_url(issue.name),
            description=describe(model),
            image=image,
            older=link(older),
            newer=link(newer),
        )

    def content_html(self, issue: Issue) -> str:
        """The issue's content alone, with absolute links only (for the feed)."""
        name = f"{TEMPLATE_DIR}/_content.html.j2"
        try:
            module: Any = self.env.get_template(name).module  # the template's macros
            macro = module.issue_content
            return str(macro(issue, self.entries(issue), self.item_level(issue), absolute=True))
        except jinja2.TemplateError as exc:
            raise template_error(exc, name) from None


def subscribe_url(config: Config) -> str:
    """Where the archive's subscribe links point."""
    return f"{config.service_url}/subscribe/{config.delivery.default_list}"


def describe(model: IssueModel, limit: int = 200) -> str:
    """One or two sentences for link previews: the preheader, else the start of the intro."""
    text = model.preheader or " ".join(markdown_text(model.intro).split()) or model.subject
    if len(text) > limit:
        text = text[: limit - 1].rsplit(" ", 1)[0] + "…"
    return text


# --- the build ---------------------------------------------------------------------------


def manifest_path(project: Project, out_dir: Path) -> Path:
    """Where the build state of ``out_dir`` lives: in .newsletter/, outside what is published."""
    state = project.root / STATE_DIR
    if out_dir.resolve() == (project.root / DEFAULT_OUT).resolve():
        return state / "archive-manifest.json"
    return state / f"archive-manifest-{_sha(str(out_dir.resolve()))[:12]}.json"


def _load_manifest(path: Path, out_dir: Path) -> dict[str, Any]:
    """The last build's state; one left in the published folder by an old version moves."""
    stray = out_dir / MANIFEST
    if stray.is_file():
        if path.exists():
            stray.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(stray, path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError, OSError):
        return {}
    return data if isinstance(data, dict) and data.get("format") == FORMAT else {}


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


def _site_files(
    renderer: _Renderer,
    published: list[Published],
    pages: dict[str, Any],
    feed_content: Callable[[Published], str],
    bundles: list[str],
) -> dict[str, bytes]:
    """index.html, search/, 404.html, assets, feed.xml, sitemap.xml and robots.txt."""
    config = renderer.config
    newest_first = list(reversed(published))
    years: list[tuple[int, list[dict[str, Any]]]] = []
    for entry in newest_first:
        if not years or years[-1][0] != entry.date.year:
            years.append((entry.date.year, []))
        years[-1][1].append({
            "href": f"issues/{entry.name}/",
            "number": entry.number,
            "date": entry.meta.date,
            "long_date": long_date(entry.date),
            "subject": entry.meta.subject,
            "preheader": entry.meta.preheader,
        })
    description = config.description or f"Every issue of {config.name}."
    css = renderer.render("style.css.j2")
    base_path = urlsplit(config.archive_base).path or "/"
    files: dict[str, str | bytes] = {
        "index.html": renderer.render(
            "index.html.j2", root="", home="./", years=years, description=description
        ),
        "search/index.html": renderer.render(
            "search.html.j2", root="../", home="../", bundles=bundles
        ),
        "404.html": renderer.render(
            "404.html.j2", root=base_path, home=base_path, inline_css=Markup(css)
        ),
        "assets/archive.css": css,
        "assets/search.js": (default_templates_dir() / TEMPLATE_DIR / "search.js").read_bytes(),
        "robots.txt": f"User-agent: *\nAllow: /\nSitemap: {config.archive_base}sitemap.xml\n",
    }
    tz = config.zone
    entries = []
    for entry in newest_first[: feed_module.FEED_ISSUES]:
        published_at = dt.datetime.combine(entry.date, dt.time(), tz)
        updated = pages[entry.name]["updated"]
        entries.append(feed_module.FeedEntry(
            url=config.issue_url(entry.name),
            title=entry.meta.subject,
            summary=entry.meta.preheader,
            content=feed_content(entry),
            published=published_at,
            updated=dt.datetime.fromisoformat(updated) if updated else published_at,
        ))
    files["feed.xml"] = feed_module.atom_feed(config, entries)
    files["sitemap.xml"] = feed_module.sitemap(
        config,
        [(config.issue_url(e.name), (pages[e.name]["updated"] or e.meta.date)[:10])
         for e in newest_first],
    )
    return {name: data.encode("utf-8") if isinstance(data, str) else data
            for name, data in files.items()}
