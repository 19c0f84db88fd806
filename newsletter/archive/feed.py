"""The archive's Atom feed (made with feedgen) and sitemap.xml."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from xml.sax.saxutils import escape

from feedgen.feed import FeedGenerator

from ..config import Config

FEED_ISSUES = 20


@dataclass(frozen=True)
class FeedEntry:
    """One issue in the feed. ``content`` is HTML; feedgen escapes it into the XML."""

    url: str
    title: str
    summary: str
    content: str
    published: dt.datetime
    updated: dt.datetime


def atom_feed(config: Config, entries: list[FeedEntry]) -> bytes:
    """An Atom feed of ``entries`` (newest first), with ids and links from archive_url."""
    generator = FeedGenerator()
    generator.id(config.archive_base)
    generator.title(config.name)
    generator.subtitle(config.description or f"Every issue of {config.name}.")
    generator.link(href=config.archive_base, rel="alternate", type="text/html")
    generator.link(href=f"{config.archive_base}feed.xml", rel="self",
                   type="application/atom+xml")
    generator.language(config.language)
    generator.author({"name": config.sender.from_name or config.name})
    if config.brand.logo_url:
        generator.logo(config.brand.logo_url)
    # The feed changes when its newest change does: a fixed value keeps rebuilds identical.
    newest = max((e.updated for e in entries),
                 default=dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
    generator.updated(newest)
    for entry in entries:
        item = generator.add_entry(order="append")
        item.id(entry.url)
        item.title(entry.title)
        item.link(href=entry.url, rel="alternate", type="text/html")
        item.published(entry.published)
        item.updated(entry.updated)
        if entry.summary:
            item.summary(entry.summary)
        item.content(entry.content, type="html")
    return generator.atom_str(pretty=True)


def sitemap(config: Config, pages: Iterable[tuple[str, str]]) -> str:
    """sitemap.xml listing the front page and each issue (url, YYYY-MM-DD last modified)."""
    pages = list(pages)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
    ]
    newest = max((lastmod for _, lastmod in pages), default="")
    lines.append(f"  <url><loc>{escape(config.archive_base)}</loc>"
                 + (f"<lastmod>{newest}</lastmod>" if newest else "") + "</url>")
    for url, lastmod in pages:
        lines.append(f"  <url><loc>{escape(url)}</loc><lastmod>{lastmod}</lastmod></url>")
    lines.append("</urlset>")
    return "\n".join(lines) + "\n"
