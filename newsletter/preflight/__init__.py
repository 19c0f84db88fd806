"""Preflight: the email a subscriber will receive, checked before anything is sent.

One module per check (links, images, spam, clients, accessibility, size, domain);
:func:`run_preflight` runs them, the network-bound ones concurrently, and returns a
:class:`Report`. ``newsletter preflight FILE`` prints it; ``newsletter send`` runs it
first and refuses on errors unless --force.
"""

from .report import CheckResult, Finding, Report
from .runner import run_preflight

__all__ = ["CheckResult", "Finding", "Report", "run_preflight"]
