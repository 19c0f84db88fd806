"""A newsletter project on disk: its folder, settings, issue files and templates."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path

from .config import CONFIG_NAME, Config, load_config
from .errors import ConfigError, NewsletterError

DATABASE_ENV = "NEWSLETTER_DATABASE_URL"


@dataclass(frozen=True)
class Project:
    """One newsletter: the folder holding newsletter.toml."""

    root: Path

    @cached_property
    def config(self) -> Config:
        """The parsed newsletter.toml."""
        return load_config(self.root / CONFIG_NAME)

    @property
    def issues_dir(self) -> Path:
        return self.root / "issues"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def subscribers_dir(self) -> Path:
        return self.root / "subscribers"

    @property
    def outbox_dir(self) -> Path:
        return self.root / self.config.delivery.outbox_dir

    def issue_files(self) -> list[Path]:
        """Every issue file, in name order (names start with the date, so oldest first)."""
        if not self.issues_dir.is_dir():
            return []
        return sorted(
            p for p in self.issues_dir.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()
        )


def find_project(start: Path | None = None) -> Project:
    """Find newsletter.toml in ``start`` (default: the current folder) or its parents."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return Project(folder)
    raise ConfigError(
        f"No {CONFIG_NAME} in {here} or any folder above it.",
        hint="Run the command inside a newsletter project, or create one with "
        "`newsletter init DIR`.",
    )


def skeleton_dir() -> Path:
    """The files `newsletter init` copies into a new project."""
    return Path(str(resources.files("newsletter") / "skeleton"))


def default_templates_dir() -> Path:
    """The package's default templates."""
    return Path(str(resources.files("newsletter") / "templates"))


def init_project(target: Path, name: str | None = None) -> Project:
    """Create a new newsletter project in ``target`` and return it.

    Copies the default templates, a commented newsletter.toml and an example
    issue. Refuses to overwrite an existing project.
    """
    target = target.resolve()
    if (target / CONFIG_NAME).exists():
        raise NewsletterError(
            f"{target / CONFIG_NAME} already exists; not overwriting it.",
            hint="Pick an empty folder, e.g. `newsletter init my-newsletter`.",
        )
    target.mkdir(parents=True, exist_ok=True)
    skeleton = skeleton_dir()
    for source in sorted(skeleton.rglob("*")):
        if source.is_dir() or "__pycache__" in source.parts:
            continue
        relative = source.relative_to(skeleton)
        destination = target / str(relative).replace("dot-", ".", 1)
        destination.parent.mkdir(parents=True, exist_ok=True)
        text = source.read_text(encoding="utf-8")
        if relative.name == CONFIG_NAME:
            # JSON string escapes are valid in TOML, so a name with quotes stays valid.
            title = name or target.name.replace("-", " ").title()
            text = text.replace('"{{ name }}"', json.dumps(title, ensure_ascii=False))
        destination.write_text(text, encoding="utf-8")
    templates = target / "templates"
    for source in sorted(default_templates_dir().rglob("*")):
        if source.is_file() and "__pycache__" not in source.parts:
            destination = templates / source.relative_to(default_templates_dir())
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
    (target / "subscribers").mkdir(exist_ok=True)
    return Project(target)


def template_names() -> list[str]:
    """Names of the package's default templates (relative paths, e.g. partials/item.mjml.j2)."""
    base = default_templates_dir()
    return sorted(
        str(p.relative_to(base)) for p in base.rglob("*.j2") if "__pycache__" not in p.parts
    )


def overridden_templates(project: Project) -> dict[str, Path]:
    """Default template name → the project's file that overrides it."""
    return {
        name: project.templates_dir / name
        for name in template_names()
        if (project.templates_dir / name).is_file()
    }


def copy_template(project: Project, name: str, force: bool = False) -> Path:
    """Copy a default template into the project's templates/ so it can be edited."""
    if name not in template_names():
        raise NewsletterError(
            f"There is no default template called {name!r}.",
            hint="Run `newsletter templates` to list them.",
        )
    target = project.templates_dir / name
    if target.exists() and not force:
        raise NewsletterError(
            f"{target} already exists; it already overrides the default.",
            hint=f"Edit it, or replace it with `newsletter templates copy {name} --force`.",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(default_templates_dir() / name, target)
    return target
