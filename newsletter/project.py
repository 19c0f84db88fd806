"""A newsletter project on disk: its folder, settings, issue files and templates."""

from __future__ import annotations

import datetime as dt
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


def find_project_for(path: Path) -> Project:
    """The project holding the file at ``path``: newsletter.toml in its folder or above.

    Used by commands given a file, so `newsletter check ../other/issues/X.yaml`
    checks X against its own project's settings and templates, from anywhere.
    """
    return find_project(path.resolve().parent)


def skeleton_dir() -> Path:
    """The files `newsletter init` copies into a new project."""
    return Path(str(resources.files("newsletter") / "skeleton"))


def default_templates_dir() -> Path:
    """The package's default templates."""
    return Path(str(resources.files("newsletter") / "templates"))


# --- who the newsletter is from: asked by init, checked before real sends -----------------

PLACEHOLDER = "CHANGE ME"
# Email domains reserved for examples (RFC 2606): mail from them never arrives.
EXAMPLE_DOMAINS = ("example.org", "example.com", "example.net")


@dataclass(frozen=True)
class Identity:
    """Who the newsletter is from: what `newsletter init` asks for."""

    name: str = ""
    postal_address: str = ""
    description: str = ""
    from_name: str = ""
    from_email: str = ""


# What init writes when it is not told (no terminal, no flags): clearly marked placeholders.
PLACEHOLDER_IDENTITY = Identity(
    name=f"{PLACEHOLDER}: the newsletter's name",
    postal_address=f"{PLACEHOLDER}: your organisation's postal address",
    description=f"{PLACEHOLDER}: one sentence saying what the newsletter is about",
    from_name=f"{PLACEHOLDER}: the sender name people see",
    from_email="newsletter@example.org",
)
# The repository's sample newsletter (newsletter.toml at its top) has a made-up postal
# address and sender address: a real send must not go out with them. (Its name and
# description may well be a real newsletter's, so they are not counted.)
SAMPLE_IDENTITY = Identity(
    postal_address="Example Rights Network, Postfach 1234, 80331 München, Germany",
    from_email="brief@example.org",
)
_SETTING = {
    "name": ("[newsletter] name", "the newsletter's name"),
    "postal_address": ("[newsletter] postal_address", "your organisation's postal address"),
    "description": ("[newsletter] description", "one sentence about the newsletter"),
    "from_name": ("[sender] from_name", "the sender name people see"),
    "from_email": ("[sender] from_email", "an address of your own organisation"),
}


def placeholder_settings(config: Config) -> list[str]:
    """What in newsletter.toml is still a placeholder or the sample's; [] when none is.

    The one place that decides whether a configuration is still a placeholder:
    `newsletter send` refuses a real send to a list while this says anything.
    Each entry says which setting, what is wrong, and what to write instead.
    """
    sender = config.sender
    values = {
        "name": config.name, "postal_address": config.postal_address,
        "description": config.description, "from_name": sender.from_name,
        "from_email": sender.from_email,
    }
    problems = []
    for key, value in values.items():
        setting, wanted = _SETTING[key]
        if PLACEHOLDER.casefold() in value.casefold():
            problems.append(f"{setting} is still a placeholder ({value!r}); write {wanted}")
        elif value and value == getattr(SAMPLE_IDENTITY, key):
            problems.append(f"{setting} is still the sample newsletter's ({value!r}); write "
                            f"{wanted}")
        elif key == "from_email" and _example_domain(value):
            problems.append(f"{setting} {value!r} is at a domain reserved for examples, "
                            f"where no mail comes from; write {wanted}")
    return problems


def _example_domain(address: str) -> bool:
    domain = address.rpartition("@")[2].casefold()
    return any(domain == d or domain.endswith("." + d) for d in EXAMPLE_DOMAINS)


def next_issue_day(today: dt.date, weekday: int = 0) -> dt.date:
    """The first ``weekday`` (0 = Monday, the sample's issue day) after ``today``."""
    return today + dt.timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)


def init_project(target: Path, name: str | None = None, *,
                 identity: Identity | None = None, today: dt.date | None = None) -> Project:
    """Create a new newsletter project in ``target`` and return it.

    Writes a commented newsletter.toml filled in from ``identity`` (what is not
    given becomes a "CHANGE ME" placeholder; the name defaults to the folder's)
    and an example issue, a draft dated the next Monday. The default templates
    are not copied: `newsletter templates copy NAME` copies the ones to change,
    so the others keep getting the package's fixes. Refuses to overwrite an
    existing project.
    """
    target = target.resolve()
    if (target / CONFIG_NAME).exists():
        raise NewsletterError(
            f"{target / CONFIG_NAME} already exists; not overwriting it.",
            hint="Pick an empty folder, e.g. `newsletter init my-newsletter`.",
        )
    given = identity or Identity()
    values = {
        key: getattr(given, key) or getattr(PLACEHOLDER_IDENTITY, key)
        for key in ("postal_address", "description", "from_name", "from_email")
    }
    values["name"] = name or given.name or target.name.replace("-", " ").title()
    target.mkdir(parents=True, exist_ok=True)
    skeleton = skeleton_dir()
    config_text = (skeleton / CONFIG_NAME).read_text(encoding="utf-8")
    for key, value in values.items():
        # JSON string escapes are valid in TOML, so a value with quotes stays valid.
        config_text = config_text.replace(f'"{{{{ {key} }}}}"',
                                          json.dumps(value, ensure_ascii=False))
    (target / CONFIG_NAME).write_text(config_text, encoding="utf-8")
    (target / ".gitignore").write_text(
        (skeleton / "dot-gitignore").read_text(encoding="utf-8"), encoding="utf-8")
    day = next_issue_day(today or dt.date.today())
    issue = target / "issues" / f"{day.isoformat()}.yaml"
    issue.parent.mkdir(exist_ok=True)
    issue.write_text((skeleton / "example-issue.yaml").read_text(encoding="utf-8").format(
        date=day.isoformat(), published=(day - dt.timedelta(days=3)).isoformat(),
        path=f"issues/{issue.name}"), encoding="utf-8")
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
