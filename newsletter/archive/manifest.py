"""The archive's build state: what the last build saw, so a rebuild redoes only what changed.

The manifest lives in the project's .newsletter/ folder (never in the published
folder: it names drafts). ``site_key`` hashes every input all pages share;
``write_if_changed`` leaves a file alone when its bytes are the same.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from ..config import CONFIG_NAME
from ..files import atomic_write
from ..project import Project, default_templates_dir
from .pages import TEMPLATE_DIR

FORMAT = 1
MANIFEST = ".archive-manifest.json"  # where versions before 0.2.0 kept it (public!)
DEFAULT_OUT = "site"
STATE_DIR = ".newsletter"  # the project's build state: git-ignored, never published
# The package modules every page renders with (beside archive/ itself): a change to
# their code changes every page.
RENDER_CODE = ("templating", "template_filters", "markdown_format", "colours")


def _sha(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8") if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


def write_if_changed(path: Path, data: bytes, scratch: Path | None = None) -> bool:
    """Atomically write ``data`` unless the file already holds exactly it. True if written."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    atomic_write(path, data, temp_dir=scratch)
    return True


def _template_files(project: Project) -> list[Path]:
    files = []
    for folder in (project.templates_dir / TEMPLATE_DIR, default_templates_dir() / TEMPLATE_DIR):
        if folder.is_dir():
            files += sorted(p for p in folder.rglob("*") if p.is_file())
    return files


def site_key(project: Project) -> str:
    """Hash of everything every page depends on: settings, templates and this code."""
    here = Path(__file__).parent
    code = sorted(here.glob("*.py")) + [here.parent / f"{name}.py" for name in RENDER_CODE]
    parts: list[bytes | str] = [str(FORMAT), (project.root / CONFIG_NAME).read_bytes()]
    for path in _template_files(project) + code:
        parts += [path.name, path.read_bytes()]
    return _sha(*parts)


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
