"""Work each worker of the service does besides answering requests.

- Every ``limits.mail_poll`` seconds: send the queued transactional emails that are
  due (:class:`newsletter.web.mailing.MailQueue`); any worker may, each message is
  claimed by one.
- Every ``limits.housekeeping`` seconds (an hour by default), by whichever worker
  takes the turn first (:func:`newsletter.store.chores.take_turn`): forget webhook
  event ids older than SendGrid's retry window, ended rate-limit counters and old
  failed emails. With one worker or ten, it runs once per period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..store import ratelimits
from ..store.chores import take_turn
from ..store.events import prune_event_ids
from ..store.mailqueue import forget_old_failed
from .context import WebContext

log = logging.getLogger("newsletter.web.chores")
EVENT_ID_DAYS = 30  # SendGrid retries for 72 hours; ids are kept far longer than that
HOUSEKEEPING = "housekeeping"


def worker_name() -> str:
    """This worker's name in the chore leases: host, process id and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def housekeeping(ctx: WebContext, holder: str) -> bool:
    """Do the housekeeping if it is this worker's turn; True if it was."""
    with ctx.write_lock, ctx.db.transaction() as session:
        if not take_turn(session, HOUSEKEEPING, holder, period=ctx.limits.housekeeping):
            return False
        forgotten = prune_event_ids(session, EVENT_ID_DAYS)
        ratelimits.forget_old(session, older_than=int(ctx.clock()) - ctx.longest_window())
        failed = forget_old_failed(session)
    log.info("housekeeping: forgot %d webhook event id(s) older than %d days and %d failed "
             "email(s)", forgotten, EVENT_ID_DAYS, failed)
    return True


async def _once(what: str, work: Callable[[], Any]) -> None:
    try:
        await work()
    except Exception as exc:  # a failed round must not end the loop (nor stop start-up)
        log.error("%s failed: %s", what, type(exc).__name__)


async def _every(seconds: float, what: str, work: Callable[[], Any]) -> None:
    while True:
        await asyncio.sleep(seconds)
        await _once(what, work)


@contextlib.asynccontextmanager
async def running(ctx: WebContext) -> AsyncIterator[None]:
    """Run the background loops while the app runs (in its lifespan)."""
    holder = worker_name()
    queue = getattr(ctx.send, "send_due", None)
    def chore() -> Any:
        return ctx.run(housekeeping, ctx, holder)

    await _once("housekeeping", chore)  # at start-up too, if it is this worker's turn
    # Asked more often than its period, so the turn moves on soon after it is due.
    check = min(ctx.limits.housekeeping, 300.0)
    tasks = [asyncio.create_task(_every(check, "housekeeping", chore))]
    if queue is not None:
        tasks.append(asyncio.create_task(_every(ctx.limits.mail_poll, "sending queued email",
                                                lambda: ctx.run(queue))))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
