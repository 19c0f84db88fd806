"""The editor's Preflight section: the same checks and words as `newsletter preview`.

The studio runs :func:`newsletter.preflight.run_preflight` (offline unless asked for
the full run) and shows its report with :func:`newsletter.preview.panel_html`, so the
studio, the preview and `newsletter preflight` never disagree.
"""

from __future__ import annotations

import html

from ..errors import NewsletterError
from ..preflight import run_preflight
from ..preview import panel_html
from ..project import Project
from .editor import Checked

WAITING = "<p>Preflight runs once the problems above are fixed.</p>"


def preflight_panel(project: Project, checked: Checked, *, full: bool = False) -> str:
    """The report as HTML for ``checked`` (the file as on disk now); ``full`` adds the network.

    While the issue has errors, only the sentence saying the checks wait for them.
    """
    if checked.rendered is None or checked.errors:
        return WAITING
    try:
        report = run_preflight(project, checked.path, offline=not full)
    except NewsletterError as exc:
        # The file changed into one with errors since it was checked: the same answer.
        return f"<p>{html.escape(exc.message)}</p>"
    return panel_html(report)
