"""Reports on what readers did: per issue (figures, click map, first 72 hours, previous
issues, list growth) and per list (health over time), for the terminal, HTML, JSON and CSV.

- :mod:`.figures` computes the numbers from the store;
- :mod:`.fallback` reads SendGrid's category statistics when no webhook events arrived;
- :mod:`.build` puts a report together for an issue file or a list;
- :mod:`.charts` draws the SVG charts (matplotlib), :mod:`.html` the self-contained page;
- :mod:`.export` writes the per-story CSV.
"""

from .build import IssueReport, ListHealth, issue_report, list_health

__all__ = ["IssueReport", "ListHealth", "issue_report", "list_health"]
