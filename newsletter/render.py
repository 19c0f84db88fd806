"""Rendering: issue → Jinja2 → MJML → mjml-python → premailer → HTML, and the plain text.

This module assembles one RenderedEmail; the parts live in templating (environments,
template errors), mjml_html (compile and inline) and personalization (per-reader tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import Config
from .issue import Issue
from .mjml_html import compile_mjml, mjml_to_html
from .personalization import HTML_TOKENS, TEXT_TOKENS, Personalization
from .project import Project
from .template_filters import long_date
from .templating import environments, render_template

HTML_TEMPLATE = "email.mjml.j2"
TEXT_TEMPLATE = "email.txt.j2"


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
    :func:`personalization.substitutions`); otherwise ``personalization`` (default: a copy not
    addressed to anyone) is filled in. Without ``inline_css`` the HTML is MJML's
    output as it is (see :func:`mjml_html.compile_mjml`): for checks, not for sending.
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
