"""The editor's Preflight section: quick checks after each save, the full run on a button.

After each save the studio runs the checks that need neither the network nor
SpamAssassin (email-client support, accessibility, size: about 0.1 s), reusing the
save's render. "Run full preflight" adds links, pictures, the spam score and the sender
domain, which take seconds; their results are kept per email content for an hour, so
the panel shows them again after each save until the email changes.

The table is :func:`newsletter.preview.panel_html`, so the studio, the preview and
`newsletter preflight` use the same words.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace

from ..errors import NewsletterError
from ..preflight import CheckResult, Report, run_preflight
from ..preflight.spam import spamd_configured
from ..preview import panel_html
from ..project import Project
from .editor import Checked

WAITING = "Preflight runs once the problems above are fixed."
NOT_YET = "Not checked yet for this version of the email: press Run full preflight."
SLOW = ("links", "images", "spam", "domain")
KEEP_SECONDS = 3600.0  # as long as the link cache: a site can go down later
KEEP_ENTRIES = 32


@dataclass(frozen=True)
class Panel:
    """What the section shows: the table, or why there is none yet."""

    table: str = ""  # the report as HTML ("" while the issue has errors)
    message: str = ""  # a sentence instead of the table
    pending: bool = False  # the slow checks have not run on this version of the email
    checked_at: str = ""  # when they did (HH:MM), if their results are reused
    spam_each_save: bool = False  # a spamd is configured: the spam score runs every time


class SlowResults:
    """The slow checks' results of recent full runs, by email content."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, tuple[float, list[CheckResult]]] = OrderedDict()

    def get(self, key: str) -> tuple[float, list[CheckResult]] | None:
        """(when, results) of the last full run of this content, if under an hour old."""
        with self._lock:
            found = self._kept.get(key)
        if found is None or time.time() - found[0] > KEEP_SECONDS:
            return None
        return found

    def put(self, key: str, results: list[CheckResult]) -> None:
        """Keep ``results`` for this content (the oldest go past KEEP_ENTRIES)."""
        with self._lock:
            self._kept[key] = (time.time(), results)
            self._kept.move_to_end(key)
            while len(self._kept) > KEEP_ENTRIES:
                self._kept.popitem(last=False)


def content_key(project: Project, checked: Checked) -> str:
    """A fingerprint of the email as sent: its render and the project's settings."""
    rendered = checked.rendered
    assert rendered is not None
    digest = hashlib.sha256()
    for part in (rendered.subject, rendered.preheader, rendered.html, rendered.text):
        digest.update(part.encode("utf-8") + b"\0")
    with contextlib.suppress(OSError):  # the sender (From, its domain): newsletter.toml
        digest.update((project.root / "newsletter.toml").read_bytes())
    return digest.hexdigest()


def preflight_panel(project: Project, checked: Checked, kept: SlowResults, *,
                    full: bool = False) -> Panel:
    """The section for ``checked`` (the file as on disk now); ``full`` runs every check.

    While the issue has errors, only the sentence saying the checks wait for them.
    """
    if checked.rendered is None or checked.issue is None or checked.errors:
        return Panel(message=WAITING)
    key = content_key(project, checked)
    quick_spam = spamd_configured()
    try:
        report = run_preflight(project, checked.path, offline=not full,
                               spam=full or quick_spam, not_run=NOT_YET,
                               issue=checked.issue, rendered=checked.rendered)
    except NewsletterError as exc:
        return Panel(message=exc.message)
    if full:
        kept.put(key, [report.check(name) for name in SLOW])
        return Panel(table=panel_html(report))
    found = kept.get(key)
    if found is None:
        # The table's own note names the CLI; the section says it in the studio's words.
        return Panel(table=panel_html(replace(report, offline=False)), pending=True,
                     spam_each_save=quick_spam)
    when, slow = found
    by_name = {check.name: check for check in slow}
    merged = Report([by_name.get(check.name, check) for check in report.checks],
                    seconds=report.seconds)
    return Panel(table=panel_html(merged), checked_at=time.strftime("%H:%M",
                                                                   time.localtime(when)))
