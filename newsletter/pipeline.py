"""The issue workflow: start the next issue, check it fully, build it to files."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from .errors import NewsletterError
from .files import atomic_write
from .issue import GMAIL_CLIP_BYTES, CheckResult, Diagnostic, check_file, issue_number, load_issue
from .mime import build_message, message_id
from .project import Project
from .render import RenderedEmail, render_email

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


def check_issue(project: Project, path: Path) -> CheckResult:
    """Validate an issue file and, when it is valid, render it to check its size."""
    return check_and_render(project, path)[0]


def check_and_render(project: Project, path: Path) -> tuple[CheckResult, RenderedEmail | None]:
    """:func:`check_issue`, also returning the email rendered for sending (None if invalid).

    For callers that need both, so the file is parsed once and rendered once.
    """
    result = check_file(path, project.issue_files())
    if result.issue is None or result.errors:
        return result, None
    rendered = render_email(project, result.issue, for_sending=True)
    if rendered.html_bytes > GMAIL_CLIP_BYTES:
        result.diagnostics.append(
            Diagnostic(
                str(path), 1, 1, "items",
                f"the email's HTML is {rendered.html_bytes / 1024:.0f} KB; Gmail clips "
                f"messages over {GMAIL_CLIP_BYTES // 1024} KB and hides the rest, including "
                "the unsubscribe link. Shorten summaries or move items to next week",
                "warning",
            )
        )
    return result, rendered


@dataclass(frozen=True)
class BuildResult:
    """Files written by :func:`build_issue`."""

    html: Path
    text: Path
    eml: Path
    rendered: RenderedEmail


def build_issue(project: Project, path: Path, out_dir: Path) -> BuildResult:
    """Render an issue and write NAME.html, NAME.txt and NAME.eml into ``out_dir``."""
    issue = load_issue(path, project.issue_files())
    rendered = render_email(project, issue)
    config = project.config
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
    html, text, eml = paths
    return BuildResult(html, text, eml, rendered)


def new_issue(project: Project, date: dt.date | None = None) -> Path:
    """Write the next issue file, numbered and dated after the last one; return its path."""
    files = project.issue_files()
    last_date: dt.date | None = None
    number = 1
    if files:
        last = files[-1]
        result = check_file(last)
        if result.issue is not None:
            last_date = result.issue.model.date
        number = issue_number(last, files) + 1
    if date is None:
        date = (last_date + dt.timedelta(days=7)) if last_date else dt.date.today()
    path = project.issues_dir / f"{date.isoformat()}.yaml"
    if path.exists():
        raise NewsletterError(
            f"{path} already exists.",
            hint="Edit it, or choose another date: `newsletter new --date YYYY-MM-DD`.",
        )
    project.issues_dir.mkdir(parents=True, exist_ok=True)
    relative = path.relative_to(project.root)
    path.write_text(
        NEW_ISSUE.format(number=number, date=date.isoformat(), path=relative), encoding="utf-8"
    )
    return path
