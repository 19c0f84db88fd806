"""MJML compiled to HTML, its CSS inlined by premailer, safely and offline."""

from __future__ import annotations

import logging
import re

from mjml import mjml2html

DOCTYPE = "<!doctype html>"
_IMPORT_RULE = re.compile(r"@import\s+(?:url\()?[^;]*;?", re.IGNORECASE)
_STYLESHEET_LINK = re.compile(r"<link\b[^>]*rel=[\"']?stylesheet[^>]*>", re.IGNORECASE)
_STYLE_BLOCK = re.compile(r"(<style\b)([^>]*>)(.*?)(</style>)", re.DOTALL | re.IGNORECASE)
# Templates start the CSS that premailer should inline with this comment (see
# email.mjml.j2). MJML's own reset and media-query blocks stay in <head> as they are,
# as the official MJML compiler leaves them: inlining "table, td {...}" into every cell
# would only make the email bigger and slower to build.
INLINE_MARKER = "/* inline */"


def _prepare_style(match: re.Match[str]) -> str:
    opening, rest, css, closing = match.groups()
    css = _IMPORT_RULE.sub("", css)
    if INLINE_MARKER not in css:
        rest = ' data-premailer="ignore"' + rest
    return f"{opening}{rest}{css}{closing}"


def mjml_to_html(mjml: str) -> str:
    """Compile MJML and inline its CSS, safely and offline.

    premailer traps handled here: it drops the doctype (put back), strips
    !important from @media rules unless told not to (that breaks MJML's
    responsive columns), fetches linked stylesheets when allowed to (it is not),
    cssutils follows @import even then (removed first), and cssutils logs a
    warning for every mso-* property (silenced).
    """
    # Imported here to save start-up time: premailer (lxml, cssutils) takes about half a
    # second to load, and `newsletter check` compiles without inlining (compile_mjml).
    from premailer import Premailer

    compiled = mjml2html(mjml, fonts={})
    compiled = _STYLESHEET_LINK.sub("", compiled)
    compiled = _STYLE_BLOCK.sub(_prepare_style, compiled)
    inlined = Premailer(
        compiled,
        allow_network=False,
        allow_loading_external_files=False,
        keep_style_tags=True,
        strip_important=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        remove_classes=False,
        disable_leftover_css=True,
        cache_css_parsing=True,
    ).transform(pretty_print=False)
    if not inlined.lstrip().lower().startswith("<!doctype"):
        inlined = f"{DOCTYPE}\n{inlined}"
    return inlined.rstrip("\n") + "\n"


def compile_mjml(mjml: str) -> str:
    """Compile MJML to HTML without inlining its CSS: the same text and links as
    :func:`mjml_to_html`, only smaller (inlining copies CSS into style attributes)."""
    compiled = mjml2html(mjml, fonts={})
    if not compiled.lstrip().lower().startswith("<!doctype"):
        compiled = f"{DOCTYPE}\n{compiled}"
    return compiled

