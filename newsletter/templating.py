"""The Jinja2 environments templates render in (the project's templates/ overriding the
package defaults by name) and render_template: the one place that names a broken or
unreadable template, by file and line, in words."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from .colours import readable_on
from .errors import NewsletterError
from .markdown_format import markdown_html, markdown_text, wrap
from .project import Project, default_templates_dir
from .template_filters import breakable, groupby_runs, long_date, meta_line

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


def _template_files(folder: Path) -> tuple[tuple[str, int], ...]:
    """The project's template files and their mtimes: a new override changes this."""
    if not folder.is_dir():
        return ()
    return tuple(sorted((str(p), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()))


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
        env.filters["wrap"] = wrap
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
