"""The report's charts: SVG drawn by matplotlib (Agg/SVG backend, no browser), inline-ready.

Every chart has a title, labelled axes, the Okabe–Ito colours (told apart with any
colour vision) and alt text: ``role="img"`` with ``aria-labelledby`` pointing at a
``<title>`` and a ``<desc>`` that says the chart's numbers in words. The output is
deterministic (fixed hash salt, no date), so a report can be compared with the last.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Sequence
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure

# Okabe & Ito (2008): distinguishable with every common colour-vision deficiency.
BLUE, ORANGE, GREEN, VERMILLION, SKY, PURPLE, GREY = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#666666")

_STYLE: Any = {  # matplotlib types rc keys as literals
    "svg.hashsalt": "newsletter-report",
    "svg.fonttype": "none",  # real text: smaller, selectable, read by screen readers
    "font.family": "sans-serif",
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titleweight": "bold",
    "axes.titlesize": 12,
    "axes.titlelocation": "left",
    "figure.dpi": 100,
}
_CHAR = 0.085  # inches: the width of a digit or an average letter at 10 pt, roughly


def _axes(width: float, height: float, *, left: float, bottom: float, top: float = 0.45,
          right: float = 0.2) -> tuple[Figure, Axes]:
    """A figure (inches) with one axes and fixed margins (inches) for the labels.

    Fixed margins, not matplotlib's constrained layout: laying out measures every label by
    drawing the figure once more, which was a third of the time of a report's charts.
    No pyplot either: a bare Figure has no window manager to keep or close.
    """
    figure = Figure(figsize=(width, height))
    axes = figure.add_axes((left / width, bottom / height, 1 - (left + right) / width,
                            1 - (bottom + top) / height))
    return figure, axes


def _number_margin(values: Sequence[float]) -> float:
    """Room for the y axis label and tick labels as long as the largest value."""
    widest = max((abs(int(v)) for v in values), default=0)
    return 0.55 + _CHAR * (len(str(widest)) + 1)


def _svg(figure: Figure, chart_id: str, title: str, description: str) -> str:
    """The figure as an inline <svg> with its alt text, sized by its container."""
    buffer = io.StringIO()
    with matplotlib.rc_context(_STYLE):  # svg.hashsalt must be set while saving
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]  # no XML declaration or DOCTYPE inside HTML
    text = re.sub(r'\s(width|height)="[\d.]+pt"', "", text, count=2)
    head = text.index(">") + 1
    alt = (f'<title id="{chart_id}-title">{html.escape(title)}</title>'
           f'<desc id="{chart_id}-desc">{html.escape(description)}</desc>')
    opening = text[:head - 1].replace(
        "<svg", f'<svg role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'class="chart" id="{chart_id}"', 1)
    return opening + ">" + alt + text[head:]


def hourly_chart(hours: dict[str, list[int]], chart_id: str = "chart-hours") -> str:
    """Opens (people), machine opens and clicks per hour over the first 72 hours."""
    title = "Opens and clicks per hour, first 72 hours"
    with matplotlib.rc_context(_STYLE):
        figure, axes = _axes(7.2, 3.2, bottom=0.6, left=_number_margin(
            [v for series in hours.values() for v in series]))
        x = list(range(len(hours["open"])))
        axes.plot(x, hours["open"], color=BLUE, linewidth=2, label="Opens (people)")
        axes.plot(x, hours["machine_open"], color=ORANGE, linewidth=2, linestyle="--",
                  label="Machine opens")
        axes.plot(x, hours["click"], color=GREEN, linewidth=2, linestyle=":", label="Clicks")
        axes.set_title(title)
        axes.set_xlabel("Hours after sending")
        axes.set_ylabel("Events per hour")
        axes.set_xticks(range(0, len(x) + 1, 12))
        axes.set_xlim(0, max(len(x) - 1, 1))
        axes.set_ylim(bottom=0)
        axes.legend(frameon=False)
    peak = max(range(len(x)), key=lambda h: hours["open"][h]) if x else 0
    description = (f"Over 72 hours: {sum(hours['open']):,} opens by people, "
                   f"{sum(hours['machine_open']):,} machine opens and {sum(hours['click']):,} "
                   f"clicks; opens peaked in hour {peak} after sending.")
    return _svg(figure, chart_id, title, description)


def stories_chart(titles: Sequence[str], clickers: Sequence[int], clicks: Sequence[int],
                  chart_id: str = "chart-stories") -> str:
    """The click map: unique clickers and clicks per story, most-read at the top."""
    title = "Clicks per story"
    height = 1.2 + 0.45 * max(len(titles), 1)
    short = [t if len(t) <= 38 else t[:37] + "…" for t in titles]
    with matplotlib.rc_context(_STYLE):
        figure, axes = _axes(7.2, height, bottom=0.6,
                             left=0.55 + 0.075 * max((len(t) for t in short), default=1))
        rows = list(range(len(titles)))
        axes.barh([r - 0.2 for r in rows], clickers, height=0.4, color=BLUE,
                  label="Readers who clicked")
        axes.barh([r + 0.2 for r in rows], clicks, height=0.4, color=SKY, hatch="//",
                  label="Clicks")
        axes.set_yticks(rows, short)
        axes.invert_yaxis()
        axes.set_title(title)
        axes.set_xlabel("Readers / clicks")
        axes.set_ylabel("Story")
        axes.legend(frameon=False, loc="lower right")
    description = "; ".join(f"{t}: {r:,} readers, {c:,} clicks"
                            for t, r, c in zip(titles, clickers, clicks, strict=True)) or \
        "No clicks."
    return _svg(figure, chart_id, title, description)


def previous_chart(labels: Sequence[str], open_rates: Sequence[float | None],
                   click_rates: Sequence[float | None], chart_id: str = "chart-previous") -> str:
    """Open and click rates of this issue beside the previous ones (oldest left)."""
    title = "This issue beside the previous ones"
    with matplotlib.rc_context(_STYLE):
        # Issue names are written at 45°: their length sets the bottom margin.
        figure, axes = _axes(7.2, 3.2, left=0.8, bottom=0.5 + 0.72 * _CHAR * max(
            (len(label) for label in labels), default=1))
        rows = list(range(len(labels)))
        opens = [100 * (r or 0) for r in open_rates]
        clicks = [100 * (r or 0) for r in click_rates]
        axes.bar([r - 0.2 for r in rows], opens, width=0.4, color=BLUE, label="Open rate")
        axes.bar([r + 0.2 for r in rows], clicks, width=0.4, color=VERMILLION, hatch="//",
                 label="Click rate")
        axes.set_xticks(rows, labels, rotation=45, ha="right")
        axes.set_title(title)
        axes.set_xlabel("Issue")
        axes.set_ylabel("Per cent of delivered")
        axes.legend(frameon=False)
    description = "; ".join(f"{label}: opened {o:.1f}%, clicked {c:.1f}%"
                            for label, o, c in zip(labels, opens, clicks, strict=True))
    return _svg(figure, chart_id, title, description)


def growth_chart(weeks: Sequence[str], joined: Sequence[int], left: Sequence[int],
                 bounced: Sequence[int], chart_id: str = "chart-growth") -> str:
    """Joined (up), left and bounced (down) per week, with the net change as a line."""
    title = f"List growth, last {len(weeks)} weeks"
    net = [j - lf - b for j, lf, b in zip(joined, left, bounced, strict=True)]
    with matplotlib.rc_context(_STYLE):
        figure, axes = _axes(7.2, 3.4, bottom=0.6, left=_number_margin(
            [*joined, *[lf + b for lf, b in zip(left, bounced, strict=True)]]) + _CHAR)
        rows = list(range(len(weeks)))
        axes.bar(rows, joined, color=GREEN, label="Joined")
        axes.bar(rows, [-v for v in left], color=ORANGE, hatch="//", label="Left")
        axes.bar(rows, [-v for v in bounced], bottom=[-v for v in left], color=PURPLE,
                 hatch="..", label="Bounced")
        axes.plot(rows, net, color="#000000", marker="o", markersize=3, label="Net")
        axes.axhline(0, color=GREY, linewidth=0.8)
        step = max(1, len(weeks) // 6)
        axes.set_xticks(rows[::step], [w[5:] for w in weeks[::step]])
        axes.set_title(title)
        axes.set_xlabel("Week starting (month-day)")
        axes.set_ylabel("People")
        axes.legend(frameon=False, ncols=4, loc="upper left", fontsize=9)
    description = (f"Over {len(weeks)} weeks: {sum(joined):,} joined, {sum(left):,} left, "
                   f"{sum(bounced):,} bounced; net {sum(net):+,}.")
    return _svg(figure, chart_id, title, description)
