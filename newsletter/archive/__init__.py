"""The web archive of past issues: static pages, Atom feed, sitemap and Pagefind search."""

from .pages import item_anchors, slugify
from .search import index_shards, pagefind_binary
from .serve import make_server, serve, serving
from .site import BuildReport, build_archive

__all__ = [
    "BuildReport",
    "build_archive",
    "index_shards",
    "item_anchors",
    "make_server",
    "pagefind_binary",
    "serve",
    "serving",
    "slugify",
]
