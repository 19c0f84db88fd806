"""What must be true before an issue goes to a list, beyond `newsletter check`.

:func:`plan_send` runs :func:`send_safety` (and the studio can too): it refuses
an issue that still holds placeholders, or a real send in the name of a
placeholder or sample configuration, and warns about an issue dated far from
the day it goes out. Each rule lives here once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..errors import NewsletterError
from ..issue import PLACEHOLDER, Issue
from ..project import EXAMPLE_DOMAINS, Project, placeholder_settings

# The words `newsletter check` warns about (issue.PLACEHOLDER: TK, TODO, FIXME, lorem
# ipsum). A send refuses them only in capitals: "todo" is Spanish for "all".
_UPPER_ONLY = {"todo", "fixme"}
# An issue dated further than this from its send day (either way) gets a warning;
# any date in the past does too. A weekly issue prepared early is at most a week ahead.
FAR_DAYS = 7
ALLOW_FLAG = "--allow-placeholders"


@dataclass
class SafetyReport:
    """What :func:`send_safety` found: reasons to refuse, and warnings to show."""

    refusals: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from _strings(inner, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, inner in enumerate(value, 1):  # 1-based, as `newsletter check` counts
            yield from _strings(inner, f"{path}[{index}]")


def issue_placeholders(issue: Issue) -> list[str]:
    """Each place in the issue still holding a placeholder, as "field: 'text'"; [] if none.

    Placeholders are the words `newsletter check` warns about, TODO, TK, FIXME
    (in capitals) and lorem ipsum (what `newsletter new` and `newsletter add`
    write where something is missing), and links to the example domains
    (example.org, as in init's example issue).
    """
    found = []
    for path, text in _strings(issue.model.model_dump(mode="json"), ""):
        for match in PLACEHOLDER.finditer(text):
            word = match.group(0)
            if word.casefold() in _UPPER_ONLY and word != word.upper():
                continue
            found.append(f"{path}: {_excerpt(text, match.start())}")
            break
        else:
            if path.endswith(("url", "image")) and _example_link(text):
                found.append(f"{path}: {text!r} is an example link")
    return found


def _excerpt(text: str, at: int, width: int = 60) -> str:
    start = max(0, at - 20)
    shown = " ".join(text[start:start + width].split())
    return repr(("…" if start else "") + shown + ("…" if start + width < len(text) else ""))


def _example_link(url: str) -> bool:
    host = (urlsplit(url).hostname or "").casefold().removeprefix("www.")
    return host in EXAMPLE_DOMAINS


def date_warning(issue_date: dt.date, send_day: dt.date) -> str | None:
    """A warning when an issue dated ``issue_date`` goes out on ``send_day``, else None.

    Any date in the past is worth a word (an old file sent by mistake), and so
    is one more than :data:`FAR_DAYS` ahead (the wrong file, or a typo in the year).
    """
    days = (issue_date - send_day).days
    if days < 0:
        ago = "yesterday" if days == -1 else f"{-days} days ago"
        return (f"The issue is dated {issue_date:%d %B %Y}, {ago}: is this the issue you "
                "meant to send? Readers see that date in the email.")
    if days > FAR_DAYS:
        return (f"The issue is dated {issue_date:%d %B %Y}, {days} days after it goes out: "
                "is this the issue you meant to send, and is its date right?")
    return None


def send_safety(
    project: Project, issue: Issue, *, to_list: bool, real_transport: bool,
    allow_placeholders: bool = False, send_day: dt.date | None = None,
) -> SafetyReport:
    """Check an issue and the settings before a send.

    ``to_list``: the issue goes to a list (not --test, --dry-run or --sandbox).
    ``real_transport``: it goes through a transport that delivers (not the outbox).
    Refusals: placeholders in the issue (unless ``allow_placeholders``), and a real
    send to a list while newsletter.toml still holds placeholders or the sample's
    identity. The rest are warnings.
    """
    report = SafetyReport()
    holes = issue_placeholders(issue)
    if holes:
        shown = "\n  ".join(holes[:10]) + ("\n  …" if len(holes) > 10 else "")
        message = f"{issue.path.name} still holds placeholders:\n  {shown}"
        if to_list and not allow_placeholders:
            report.refusals.append(message)
        else:
            report.warnings.append(message)
    settings = placeholder_settings(project.config)
    if settings:
        message = "newsletter.toml still holds placeholders or the sample newsletter's " \
            "details:\n  " + "\n  ".join(settings)
        if to_list and real_transport:
            report.refusals.append(message)
        else:
            report.warnings.append(message)
    today = send_day or dt.datetime.now(project.config.zone).date()
    if to_list and (warning := date_warning(issue.model.date, today)):
        report.warnings.append(warning)
    return report


def refuse(report: SafetyReport, issue_file: str) -> None:
    """Raise NewsletterError naming every refusal in ``report`` (nothing if there is none)."""
    if not report.refusals:
        return
    placeholders_only = all("still holds placeholders:" in r and "newsletter.toml" not in r
                            for r in report.refusals)
    hint = f"Replace them, then run `newsletter check {issue_file}` and send again."
    if placeholders_only:
        hint += f" To send them anyway, add {ALLOW_FLAG}."
    elif any("newsletter.toml" in r for r in report.refusals):
        hint = ("Write your organisation's details into newsletter.toml (see "
                "docs/configuration.md), then send again. "
                + ("Also replace the issue's placeholders." if len(report.refusals) > 1
                   else ""))
    raise NewsletterError("Not sending: " + "\n".join(report.refusals), hint=hint.strip())
