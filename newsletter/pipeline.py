"""The issue workflow: start the next issue, check it fully, build it to files."""

from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import NewsletterError
from .files import atomic_write
from .issue import GMAIL_CLIP_BYTES, CheckResult, Diagnostic, check_file, issue_number, load_issue
from .personalization import TEXT_TOKENS
from .project import Project
from .render import RenderedEmail, preview_personalization, render_email

NEW_ISSUE = """\
# Issue {number}. Format: docs/issue-format.md. Check it with: newsletter check {path}
date: {date}
number: {number}
subject: TODO one line that makes people open the email
preheader: TODO one sentence shown after the subject in the inbox
intro: |
  TODO a few words to open the issue.

items:
  # Add stories with `newsletter add {path} URL`, or write them here:
  - title: TODO the headline
    url: https://example.org/TODO
    source: TODO publication
    published: {date}
    photo_credit: TODO
    summary: |
      TODO two or three sentences.
"""


# Inlining CSS (premailer) makes the HTML at most this much bigger than MJML's output
# (1.07 to 1.18 measured, from 1 to 30 items: the same few rules copied onto each
# element). Below the limit by this margin, `check` needs no inlining to know the size.
INLINING_GROWTH = 1.5


def check_issue(project: Project, path: Path) -> CheckResult:
    """Validate an issue file and, when it is valid, apply the email rules to it.

    Quicker than :func:`check_and_render`, with the same verdicts: the footer rule
    reads the email compiled without inlining its CSS (inlining adds and removes
    no text), and the size is measured after inlining only when it may come near
    Gmail's limit.
    """
    result = check_file(path, project.issue_files())
    if result.issue is None or result.errors:
        return result
    draft = render_email(project, result.issue, for_sending=True, inline_css=False)
    html_bytes = draft.html_bytes * INLINING_GROWTH
    if html_bytes > GMAIL_CLIP_BYTES:
        html_bytes = render_email(project, result.issue, for_sending=True).html_bytes
    email_rules(result, path, project, draft, int(html_bytes))
    return result


def check_and_render(project: Project, path: Path) -> tuple[CheckResult, RenderedEmail | None]:
    """:func:`check_issue`, also returning the email rendered for sending (None if invalid).

    For callers that need both (a send, preflight), so the file is parsed once and
    rendered once; the rules read the email exactly as it is sent.
    """
    result = check_file(path, project.issue_files())
    if result.issue is None or result.errors:
        return result, None
    rendered = render_email(project, result.issue, for_sending=True)
    email_rules(result, path, project, rendered, rendered.html_bytes)
    return result, rendered


def email_rules(result: CheckResult, path: Path, project: Project, rendered: RenderedEmail,
                html_bytes: int) -> None:
    """Add to ``result`` what the rendered email breaks: the footer the law requires
    (an error: `newsletter send` refuses it), and Gmail's clipping size (a warning)."""
    for problem in footer_problems(project, rendered, TEXT_TOKENS.unsubscribe_url):
        result.diagnostics.append(Diagnostic(str(path), 1, 1, FOOTER_FIELD, problem, "error"))
    if html_bytes > GMAIL_CLIP_BYTES:
        result.diagnostics.append(
            Diagnostic(
                str(path), 1, 1, "items",
                f"the email's HTML is {html_bytes / 1024:.0f} KB; Gmail clips "
                f"messages over {GMAIL_CLIP_BYTES // 1024} KB and hides the rest, including "
                "the unsubscribe link. Shorten summaries or move items to next week",
                "warning",
            )
        )


FOOTER_FIELD = "footer"  # the field named by footer_problems' diagnostics
_TAG = re.compile(r"<[^>]*>")
_NOT_WORD = re.compile(r"\W+")


def _words(text: str) -> str:
    """Letters and digits only, case-folded: a wrapped or re-punctuated address still matches."""
    return _NOT_WORD.sub("", text).casefold()


def footer_problems(project: Project, rendered: RenderedEmail, unsubscribe_url: str) -> list[str]:
    """What the law requires in every email and the rendered one lacks; [] if nothing.

    Every bulk email needs a working unsubscribe link and the sender's postal
    address (CAN-SPAM, GDPR practice, Gmail's and Yahoo's sender rules). A
    changed template can drop either, so this looks at the rendered HTML and
    text, not at the templates.
    """
    config = project.config
    html_text = html.unescape(_TAG.sub(" ", rendered.html))
    parts = {"HTML": (rendered.html, html_text), "text": (rendered.text, rendered.text)}
    problems = []
    for part, (raw, visible) in parts.items():
        if unsubscribe_url not in raw and html.escape(unsubscribe_url) not in raw:
            problems.append(
                f"the {part} email has no unsubscribe link; the law requires one in every "
                "email. Put {{ person.unsubscribe_url }} back into your changed template "
                "(compare with `newsletter templates copy partials/footer.mjml.j2 --force`)"
            )
        if config.postal_address and _words(config.postal_address) not in _words(visible):
            problems.append(
                f"the {part} email does not show the postal address from newsletter.toml; "
                "the law requires it in every email. Put {{ config.postal_address }} back "
                "into your changed template"
            )
    return problems


@dataclass(frozen=True)
class BuildResult:
    """Files written by :func:`build_issue`."""

    html: Path
    text: Path
    eml: Path
    rendered: RenderedEmail
    problems: list[str] = field(default_factory=list)  # what the law requires and is missing


def build_issue(project: Project, path: Path, out_dir: Path) -> BuildResult:
    """Render an issue and write NAME.html, NAME.txt and NAME.eml into ``out_dir``."""
    issue = load_issue(path, project.issue_files())
    rendered = render_email(project, issue)
    config = project.config
    unsubscribe_url = preview_personalization(config, issue).unsubscribe_url
    problems = footer_problems(project, rendered, unsubscribe_url)
    # Imported here to save start-up time: `newsletter check` builds no message.
    from .mime import build_message, message_id

    sent_at = dt.datetime.combine(issue.model.date, dt.time(8, 0), config.zone)
    message = build_message(
        config,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        date=sent_at,
        msg_id=message_id(config, "build", issue.name),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{issue.name}{suffix}" for suffix in (".html", ".txt", ".eml")]
    for target, data in zip(
        paths, (rendered.html.encode(), rendered.text.encode(), message.as_bytes()), strict=True
    ):
        atomic_write(target, data)
    html_file, text_file, eml = paths
    return BuildResult(html_file, text_file, eml, rendered, problems)


def new_issue(project: Project, date: dt.date | None = None,
              today: dt.date | None = None) -> Path:
    """Write a new issue file dated ``date`` (default: today), numbered in order; its path.

    The date never comes from the other issues: after `newsletter init` the last
    file is the example, and an old last issue would give a date in the past.
    """
    if date is None:
        date = today or dt.datetime.now(project.config.zone).date()
    path = project.issues_dir / f"{date.isoformat()}.yaml"
    if path.exists():
        raise NewsletterError(
            f"{path} already exists.",
            hint="Edit it, or choose another date: `newsletter new --date YYYY-MM-DD`.",
        )
    number = issue_number(path, project.issue_files())
    project.issues_dir.mkdir(parents=True, exist_ok=True)
    relative = path.relative_to(project.root)
    path.write_text(
        NEW_ISSUE.format(number=number, date=date.isoformat(), path=relative), encoding="utf-8"
    )
    return path
