"""Sending: Mail Send requests, transports (SendGrid, outbox), campaigns and the send itself.

For one transactional message (double opt-in confirmation, welcome)::

    from newsletter.delivery import send_one
    send_one(project, to="ann@example.org", subject="Please confirm", html=..., text=...)

Sending an issue to a list, one module per job:

- :mod:`.schedule`: reading ``--at`` and checking a scheduled time;
- :mod:`.planning`: :func:`~.planning.plan_send` checks, renders and counts, sends nothing;
- :mod:`.send`: :func:`~.send.run_send` carries out a plan, choosing among
- :mod:`.trial` (test, dry-run and sandbox sends, never recorded) and
- :mod:`.runner` (the threaded, resumable send of a recorded campaign's batches,
  each batch sent and its outcome recorded by :mod:`.batchsend`), all filling in
  :mod:`.sendreport`'s report;
- :mod:`.status`: campaigns' status, and cancelling a scheduled send.

None of them is imported here, and ``send_one`` only on first use: importing
``newsletter.delivery.models`` (as reports and status do) must not load the transports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .single import send_one

__all__ = ["send_one"]


def __getattr__(name: str) -> Any:
    if name == "send_one":
        from .single import send_one

        return send_one
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
