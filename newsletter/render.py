"""Rendering: issue → Jinja2 → MJML → mjml-python → premailer → HTML, and the plain text."""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markdown_it import MarkdownIt
from markupsafe import Markup, escape
from mjml import mjml2html

from .config import Config
from .errors import NewsletterError
from .issue import Issue, Item
from .project import Project, default_templates_dir

HTML_TEMPLATE = "email.mjml.j2"
TEXT_TEMPLATE = "email.txt.j2"
DOCTYPE = "<!doctype html>"

# Raw HTML in Markdown is shown as text, never passed through.
_markdown = MarkdownIt("commonmark", {"html": False, "typographer": False})
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


# --- the greeting -------------------------------------------------------------------------
# "Hello Ann" from the reader's first name, or newsletter.toml's greeting alone ("Hello")
# when the first name is not known. The rule (docs/templates.md): a first_name attribute
# wins; else the first word of the name, except for names in a family-name-first script
# (Chinese, Japanese, Korean: the first word would be the family name), names written
# "Family, Given", and titles such as "Dr." (skipped). Then the greeting stands alone.

DEFAULT_GREETING = "Hello"

# Han (CJK ideographs and extensions), Hiragana, Katakana, Hangul syllables and jamo.
_FAMILY_NAME_FIRST = re.compile(
    "[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f]"
)


def first_name(name: str | None, given: str | None = None) -> str:
    """The reader's first name for the greeting, or "" when it should not be guessed."""
    if given and given.strip():
        return " ".join(given.split())
    if not name or "," in name or _FAMILY_NAME_FIRST.search(name):
        return ""
    words = [word for word in name.split() if not word.endswith(".")]
    return words[0] if words else ""


def greeting_line(greeting: str, name: str | None, given: str | None = None) -> str:
    """"Hello Ann" for Ann Lee; the greeting alone when there is no first name."""
    first = first_name(name, given)
    return f"{greeting} {first}" if first else greeting


# --- colours (the email's dark palette) ---------------------------------------------------

WCAG_AA = 4.5  # normal-size text (WCAG 2.x, 1.4.3)


def _rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _channel(value: int) -> float:
    scaled = value / 255
    return scaled / 12.92 if scaled <= 0.04045 else ((scaled + 0.055) / 1.055) ** 2.4


def luminance(colour: str) -> float:
    """Relative luminance of a #rrggbb colour (WCAG 2.x)."""
    red, green, blue = (_channel(part) for part in _rgb(colour))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two #rrggbb colours, from 1 to 21."""
    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def mix(colour: str, other: str, amount: float) -> str:
    """``colour`` moved ``amount`` (0 to 1) of the way towards ``other``."""
    mixed = (round(a + (b - a) * amount) for a, b in zip(_rgb(colour), _rgb(other), strict=True))
    return "#" + "".join(f"{part:02x}" for part in mixed)


@lru_cache(maxsize=64)
def readable_on(colour: str, background: str, ratio: float = WCAG_AA) -> str:
    """``colour``, lightened towards white just enough to reach ``ratio`` on a dark
    ``background`` (so a brand's dark blue stays blue, not black-on-black)."""
    for step in range(21):
        candidate = mix(colour, "#ffffff", step / 20)
        if contrast(candidate, background) >= ratio:
            return candidate
    return "#ffffff"


@dataclass(frozen=True)
class Personalization:
    """What differs per recipient. Values are plain text; templates escape them."""

    name: str = ""
    unsubscribe_url: str = ""
    view_url: str = ""
    # "Hello Ann", or the configured greeting alone (see newsletter.greeting).
    greeting: str = DEFAULT_GREETING


# Sending renders once with these tokens; the transport (or SendGrid) substitutes them
# per recipient, everywhere they occur. So they must never occur in real text: an issue
# containing TOKEN_MARK is refused by `newsletter check`. The HTML gets its own name
# token because its value must be HTML-escaped.
TEXT_TOKENS = Personalization(
    name="[[nl:name]]", unsubscribe_url="[[nl:unsubscribe_url]]", view_url="[[nl:view_url]]",
    greeting="[[nl:greeting]]",
)
HTML_TOKENS = replace(TEXT_TOKENS, name="[[nl:name_html]]", greeting="[[nl:greeting_html]]")


def substitutions(
    name: str, unsubscribe_url: str, view_url: str, *, greeting: str = DEFAULT_GREETING,
    given_name: str | None = None,
) -> dict[str, str]:
    """Token → value for one recipient of a message rendered with ``for_sending=True``.

    ``greeting`` is newsletter.toml's; ``given_name`` the reader's first_name attribute.
    """
    shown = name.strip() or "there"
    line = greeting_line(greeting, name, given_name)
    return {
        TEXT_TOKENS.name: shown,
        HTML_TOKENS.name: str(escape(shown)),
        TEXT_TOKENS.greeting: line,
        HTML_TOKENS.greeting: str(escape(line)),
        # Links are our own URLs (no characters HTML would need escaped), so one value
        # serves both parts.
        TEXT_TOKENS.unsubscribe_url: unsubscribe_url,
        TEXT_TOKENS.view_url: view_url,
    }


def personalize(text: str, values: dict[str, str]) -> str:
    """Replace substitution tokens in one rendered part, as SendGrid does."""
    if not values:
        return text
    pattern = re.compile("|".join(re.escape(token) for token in values))
    return pattern.sub(lambda match: values[match.group(0)], text)


_CLASS_NAME = re.compile(r"'[\w.]+ object' has no attribute '(\w+)'")


class TemplateError(NewsletterError):
    """An email template cannot be used: which file, which line, what is wrong."""


def _template_problem(exc: jinja2.TemplateError, name: str) -> TemplateError:
    """A Jinja2 error as a message naming the template file and line, with what to do."""
    where = getattr(exc, "filename", None) or name
    line = getattr(exc, "lineno", None)
    place = f"{where}:{line}" if line else where
    if isinstance(exc, jinja2.TemplateSyntaxError):
        what = f"the template has a mistake: {exc.message}"
    elif isinstance(exc, jinja2.UndefinedError):
        # Jinja2 names Python classes ("'x.Config object' has no attribute 'nmae'").
        message = _CLASS_NAME.sub(r"'\1' is undefined", exc.message or "")
        what = (f"the template uses something that does not exist: {message} "
                "(check the spelling; docs/templates.md lists what templates can use)")
    elif isinstance(exc, jinja2.TemplateNotFound):
        what = f"the template {exc.name} is missing"
    else:
        what = f"the template cannot be used: {exc.message or exc}"
    return TemplateError(f"{place}: {what}",
                         hint="Fix the template, then run the command again (or delete your "
                              "copy in templates/ to use the default).")


def render_template(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    """Render template ``name``; a mistake in it raises TemplateError (file, line, what)."""
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateError as exc:
        raise template_error(exc, name) from None
    except (OSError, UnicodeDecodeError) as exc:  # a template file that cannot be read
        raise _unreadable_template(env, name, exc) from None


def _unreadable_template(env: jinja2.Environment, name: str, exc: Exception) -> TemplateError:
    """Name the template file that cannot be read (it may be one that ``name`` includes)."""
    folders = [Path(p) for p in getattr(env.loader, "searchpath", [])]
    culprit: Path | None = None
    for folder in folders:
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            try:
                if path.is_file():
                    path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                culprit = path
                break
        if culprit is not None:
            break
    where = name
    if culprit is not None:
        try:
            where = str(culprit.relative_to(Path.cwd()))
        except ValueError:
            where = str(culprit)
    what = ("is not saved as UTF-8 text" if isinstance(exc, UnicodeDecodeError)
            else f"cannot be read ({exc.strerror or exc})" if isinstance(exc, OSError)
            else "cannot be read")
    return TemplateError(f"{where}: this email template {what}.",
                         hint="Save it as UTF-8 text with your editor (or delete your copy in "
                              "templates/ to use the default), then run the command again.")


def template_error(exc: jinja2.TemplateError, name: str) -> TemplateError:
    """:func:`_template_problem`, finding the line of errors raised while rendering."""
    # Runtime errors (an unknown variable) carry no line. Jinja2 rewrites the traceback so
    # that its last template frame has the template's file name and line: use that.
    if getattr(exc, "lineno", None) is None:
        tb = exc.__traceback__
        while tb is not None:
            filename = tb.tb_frame.f_code.co_filename
            if filename.endswith(".j2"):
                exc.filename, exc.lineno = filename, tb.tb_lineno  # type: ignore[attr-defined]
            tb = tb.tb_next
    return _template_problem(exc, name)


@dataclass(frozen=True)
class RenderedEmail:
    """One issue rendered: subject, HTML and plain text."""

    subject: str
    preheader: str
    html: str
    text: str
    mjml: str

    @property
    def html_bytes(self) -> int:
        """Size of the HTML as sent (Gmail clips messages over 102 KB)."""
        return len(self.html.encode("utf-8"))


@lru_cache(maxsize=4096)
def _markdown_tokens(source: str) -> tuple[Any, ...]:
    # Each summary is shown twice (HTML and text part), so parse it once.
    return tuple(_markdown.parse(source))


def markdown_html(source: str | None) -> Markup:
    """Markdown to safe HTML (raw HTML in the source is escaped)."""
    if not source:
        return Markup("")
    tokens = list(_markdown_tokens(source))
    return Markup(_markdown.renderer.render(tokens, _markdown.options, {}).strip())


def markdown_text(source: str | None, width: int = 72) -> str:
    """Markdown to plain text: paragraphs kept, links written as 'text (url)'."""
    if not source:
        return ""
    paragraphs: list[str] = []
    for token in _markdown_tokens(source):
        if token.type != "inline":
            continue
        words: list[str] = []
        href: str | None = None
        for child in token.children or []:
            if child.type == "link_open":
                href = str(child.attrs.get("href", ""))
            elif child.type == "link_close":
                if href:
                    words.append(f" ({href})")
                href = None
            elif child.type in ("softbreak", "hardbreak"):
                words.append(" ")
            elif child.content:
                words.append(child.content)
        paragraphs.append(_wrap("".join(words), width))
    return "\n\n".join(paragraphs)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return textwrap.fill(
        " ".join(text.split()), width=width, break_long_words=False, break_on_hyphens=False
    )


# Email programs ignore overflow-wrap, so a long unbroken word (a URL, a German compound)
# would widen the email on a phone. Words of LONG_WORD characters or more get break
# opportunities: a soft hyphen inside letters, a zero-width space after URL punctuation.
LONG_WORD = 16
_LONG_WORD = re.compile(rf"\S{{{LONG_WORD},}}")
_URL_BREAK = re.compile(r"([/._?&=#-])(?=\S)")
_LETTER_RUN = re.compile(rf"[^\W\d_]{{{LONG_WORD},}}")


def _soft_hyphens(match: re.Match[str]) -> str:
    word = match.group(0)
    step = LONG_WORD // 2
    return "\u00ad".join(word[i:i + step] for i in range(0, len(word), step))


def _break_word(match: re.Match[str]) -> str:
    word = _URL_BREAK.sub("\\1\u200b", match.group(0))
    return _LETTER_RUN.sub(_soft_hyphens, word)


@lru_cache(maxsize=4096)
def breakable(text: str | None) -> str:
    """``text`` with break opportunities inside words of LONG_WORD characters or more."""
    if not text:
        return ""
    return _LONG_WORD.sub(_break_word, text)


@lru_cache(maxsize=1024)
def long_date(value: dt.date | None) -> str:
    """1 February 2021 (no leading zero, English month)."""
    if value is None:
        return ""
    return f"{value.day} {value:%B %Y}"


def meta_line(item: Item) -> str:
    """'BuzzFeed.News · 14 January 2020 · Photo: Reuters' (parts that are missing are left out)."""
    parts = [item.source or "", long_date(item.published)]
    if item.photo_credit:
        parts.append(f"Photo: {item.photo_credit}")
    return " · ".join(part for part in parts if part)


def _template_files(folder: Path) -> tuple[tuple[str, int], ...]:
    """The project's template files and their mtimes: a new override changes this."""
    if not folder.is_dir():
        return ()
    return tuple(sorted((str(p), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()))


def groupby_runs(items: list[Item]) -> list[tuple[bool, list[Item]]]:
    """Consecutive items split into runs of (has a picture, items)."""
    runs: list[tuple[bool, list[Item]]] = []
    for item in items:
        with_picture = bool(item.image)
        if runs and runs[-1][0] == with_picture:
            runs[-1][1].append(item)
        else:
            runs.append((with_picture, [item]))
    return runs


def _bytecode_cache(kind: str) -> jinja2.BytecodeCache | None:
    try:
        return jinja2.FileSystemBytecodeCache(pattern=f"__newsletter_{kind}_%s.cache")
    except RuntimeError:  # no usable temporary folder: compile every time
        return None


@lru_cache(maxsize=16)
def _environments(
    templates_dir: Path | None, _files: tuple[tuple[str, int], ...] = ()
) -> tuple[jinja2.Environment, jinja2.Environment]:
    search = [str(default_templates_dir())]
    if templates_dir is not None and templates_dir.is_dir():
        search.insert(0, str(templates_dir))
    loader = jinja2.FileSystemLoader(search)
    common: dict[str, Any] = {
        "loader": loader,
        "undefined": jinja2.StrictUndefined,
        "trim_blocks": True,
        "lstrip_blocks": True,
        "keep_trailing_newline": True,
        "auto_reload": True,
    }
    # Compiled templates are kept between runs (in the user's own folder in the system's
    # temporary directory, keyed by each template's text): compiling them is most of a
    # first render (about 0.25 s). One cache per environment: autoescaping is compiled in.
    html_env = jinja2.Environment(autoescape=True, bytecode_cache=_bytecode_cache("html"),
                                  **common)
    text_env = jinja2.Environment(autoescape=False, bytecode_cache=_bytecode_cache("text"),
                                  **common)
    for env in (html_env, text_env):
        env.filters["markdown"] = markdown_html
        env.filters["markdown_text"] = markdown_text
        env.filters["long_date"] = long_date
        env.filters["wrap"] = _wrap
        env.globals["meta_line"] = meta_line
        env.filters["groupby_runs"] = groupby_runs
        env.filters["readable_on"] = readable_on
        env.filters["breakable"] = breakable
    return html_env, text_env


def environments(project: Project) -> tuple[jinja2.Environment, jinja2.Environment]:
    """(HTML environment with autoescaping, plain-text environment) for a project.

    Templates in the project's templates/ override the package defaults by name.
    """
    return _environments(project.templates_dir, _template_files(project.templates_dir))


def template_context(config: Config, issue: Issue, person: Personalization) -> dict[str, Any]:
    """What every email template sees."""
    return {
        "config": config,
        "brand": config.brand,
        "issue": issue,
        "items": issue.model.items,
        "sections": issue.sections,
        "person": person,
        "issue_date": long_date(issue.model.date),
    }


def preview_personalization(config: Config, issue: Issue) -> Personalization:
    """Links for a copy that is not addressed to anyone (build, preview)."""
    return Personalization(
        name="",
        unsubscribe_url=f"{config.service_url}/unsubscribe/",
        view_url=config.issue_url(issue.name),
        greeting=config.greeting,
    )


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


def render_email(
    project: Project,
    issue: Issue,
    personalization: Personalization | None = None,
    *,
    for_sending: bool = False,
    inline_css: bool = True,
) -> RenderedEmail:
    """Render one issue to HTML and plain text.

    With ``for_sending`` the per-recipient parts are substitution tokens (see
    :func:`substitutions`); otherwise ``personalization`` (default: a copy not
    addressed to anyone) is filled in. Without ``inline_css`` the HTML is MJML's
    output as it is (see :func:`compile_mjml`): for checks, not for sending.
    """
    config = project.config
    if for_sending:
        html_person, text_person = HTML_TOKENS, TEXT_TOKENS
    else:
        html_person = text_person = personalization or preview_personalization(config, issue)
    html_env, text_env = environments(project)
    mjml = render_template(html_env, HTML_TEMPLATE, template_context(config, issue, html_person))
    html = mjml_to_html(mjml) if inline_css else compile_mjml(mjml)
    text = render_template(text_env, TEXT_TEMPLATE, template_context(config, issue, text_person))
    return RenderedEmail(
        subject=issue.model.subject,
        preheader=issue.model.preheader or "",
        html=html,
        text=text,
        mjml=mjml,
    )
