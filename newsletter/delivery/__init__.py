"""Sending: Mail Send requests, transports (SendGrid, outbox), campaigns and the send itself.

For one transactional message (double opt-in confirmation, welcome)::

    from newsletter.delivery import send_one
    send_one(project, to="ann@example.org", subject="Please confirm", html=..., text=...)

Sending an issue to a list, one module per job:

- :mod:`.schedule`: reading ``--at`` and checking a scheduled time;
- :mod:`.planning`: :func:`~.planning.plan_send` checks, renders and counts, sends nothing;
- :mod:`.send`: :func:`~.send.run_send` carries out a plan, choosing among
- :mod:`.trial` (test, dry-run and sandbox sends, never recorded) and
- :mod:`.runner` (the threaded, resumable send of a recorded campaign's batches);
- :mod:`.status`: campaigns' status, and cancelling a scheduled send.

They are not imported here, so ``send_one`` stays quick to import.
"""

from .single import send_one

__all__ = ["send_one"]
