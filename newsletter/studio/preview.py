"""The live preview: the email as sent, personalised for a sample subscriber.

It reuses the render of the last check (:class:`~.editor.RenderCache`), so an edit
costs one render, and fills in the per-reader parts as the transport would.
"""

from __future__ import annotations

from ..personalization import personalize, substitutions
from ..project import Project
from .editor import Checked
from .images import MEDIA_PATH, media_base

SAMPLE_NAME = "Alex Sample"
# How apps that force a dark mode on emails show them (they invert the colours).
DARK_STYLE = ("<style>html{filter:invert(1) hue-rotate(180deg);background:#fff}"
              "img{filter:invert(1) hue-rotate(180deg)}</style>")


def sample_values(project: Project, name: str) -> dict[str, str]:
    """The per-reader values for the sample subscriber."""
    config = project.config
    return substitutions(SAMPLE_NAME, f"{config.service_url}/unsubscribe/sample-preview",
                         config.issue_url(name))


def _local_media(project: Project, html: str, root: str) -> str:
    # Uploaded pictures are published with the archive; until then the studio serves them.
    return html.replace(media_base(project.config), f"{root}/{MEDIA_PATH}/")


def email_html(project: Project, checked: Checked, *, dark: bool = False,
               root: str = "") -> str | None:
    """The HTML part for the sample subscriber (None while the issue has errors).

    ``root``: the path the studio is mounted at, for the pictures it serves.
    """
    if checked.rendered is None:
        return None
    html = _local_media(project, personalize(checked.rendered.html,
                                             sample_values(project, checked.path.stem)), root)
    if dark:
        html = html.replace("</head>", DARK_STYLE + "</head>", 1)
    return html


def email_text(project: Project, checked: Checked) -> str | None:
    """The plain-text part for the sample subscriber (None while the issue has errors)."""
    if checked.rendered is None:
        return None
    return personalize(checked.rendered.text, sample_values(project, checked.path.stem))
