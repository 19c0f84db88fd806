"""Archive pages: the HTML of an issue page, and the index, search page, 404, feed and sitemap.

What each published issue is (:class:`IssueMeta`, :class:`Published`), the anchors
of its items, and :class:`_Renderer`, which renders the archive templates with the
project's Jinja2 environment. The build (.site) decides which pages to write.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from markupsafe import Markup

from ..config import Config
from ..issue import Issue, IssueModel, Item
from ..markdown_format import markdown_text
from ..project import Project, default_templates_dir
from ..template_filters import long_date
from ..templating import environments, render_template, template_error
from . import feed as feed_module

TEMPLATE_DIR = "archive"


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
