"""Sending one reserved batch from a worker thread, and recording what came of it.

The runner (:mod:`.runner`) reserves and builds batches and queues them; each worker
thread here takes one at a time, claims it (pending or failed → submitting) just
before its request, and marks it accepted or failed just after. A request that may
have arrived without an answer leaves the batch submitting: ambiguous. Rate limits
pause every worker; other temporary failures are tried again with backoff, keeping
the batch's lease meanwhile so nobody else takes it.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from . import campaign as state
from .building import HelperSenders
from .leases import Reserved
from .messages import MessageJournal
from .models import BatchState
from .planning import SendSettings
from .problems import Ambiguous, AuthProblem, DeliveryProblem, RateLimited, Rejected, Retryable
from .sendreport import BatchProblem, Progress, SendReport
from .transports import Transport


@dataclass
class Work:
    """A reserved batch on its way to a worker, and what its attempts learnt about it."""

    batch: Reserved
    recipients: int
    body: dict[str, Any] | None
    payload: bytes
    from_states: tuple[str, ...]
    people: list[tuple[int, str, str]] = field(default_factory=list)
    counted: bool = False  # a helper's count of those who left since the freeze is in
    refused: list[tuple[int, str, str]] = field(default_factory=list)  # see .refusals
    told: bool = False  # its refused addresses are in the report (after its first claim)


class BatchSender:
    """What the worker threads share: they send batches and record each one's outcome."""

    def __init__(self, settings: SendSettings, transport: Transport, report: SendReport,
                 progress: Progress, stop: threading.Event, lock: threading.Lock,
                 owner: str, retry_ambiguous: bool) -> None:
        self.settings = settings
        self.retry = settings.retry_policy()
        self.transport = transport
        self.report = report
        self.progress = progress
        self.stop = stop
        self.fatal: DeliveryProblem | None = None
        self.lock = lock  # guards the report and the rate-limit pause
        self.pause_until = 0.0
        self.owner = owner
        self.lease = settings.lease_seconds
        self.retry_ambiguous = retry_ambiguous
        self.helpers: HelperSenders | None = None  # set once the run knows its size
        # SMTP answers each message: each one is then recorded (see .messages).
        self.per_recipient = bool(getattr(transport, "per_recipient", False))

    def tell_refused(self, item: Work) -> None:
        """Add a batch's left-out addresses to the report, once (a retry claims again)."""
        if item.refused and not item.told:
            item.told = True
            with self.lock:
                self.report.refused.extend(row[1] for row in item.refused)

    def work_on(self, connection: Connection, work: queue.Queue[Work | None]) -> None:
        """One worker thread: send the queued batches until a None says it is done."""
        while True:
            item = work.get()
            if item is None:
                return
            if self.stop.is_set():
                continue
            try:
                self._deliver(item, connection)
            except Exception as exc:  # a bug must not leave the others running blind
                self.fatal = DeliveryProblem(f"unexpected error: {type(exc).__name__}: {exc}")
                self.stop.set()
                self._record(self.report.ambiguous, item, str(self.fatal))

    def _wait_for_rate_limit(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                remaining = self.pause_until - time.time()
            if remaining <= 0:
                return
            self.stop.wait(min(remaining, 1.0))

    def _record(self, bucket: list[BatchProblem], item: Work, message: str) -> None:
        with self.lock:
            bucket.append(BatchProblem(item.batch.number, item.recipients, message))
        self.progress.advance(item.batch.recipient_count)

    def _deliver(self, item: Work, engine: Connection) -> None:
        settings, batch_id = self.settings, item.batch.id
        retries = waits = 0
        from_states = item.from_states
        while True:
            self._wait_for_rate_limit()
            if self.stop.is_set():
                return
            try:
                if self.helpers is not None:
                    if not self._send_in_helper(item, engine, from_states):
                        return
                else:
                    if not state.claim(engine, batch_id, from_states, item.recipients,
                                       self.owner, self.lease, item.refused):
                        return  # another sender took it
                    self.tell_refused(item)
                    with self.lock:
                        self.report.requests += 1
                    if self.per_recipient:
                        self._send_each(item, engine)
                        return
                    self.transport.send(item.body, item.payload)
            except AuthProblem as problem:
                state.finish(engine, batch_id, BatchState.FAILED, problem.message)
                self.fatal = problem
                self.stop.set()
                self._record(self.report.failed, item, problem.message)
                return
            except Rejected as problem:
                state.finish(engine, batch_id, BatchState.FAILED, problem.message)
                self._record(self.report.failed, item, problem.message)
                return
            except Ambiguous as problem:
                # Stays submitting; the lease is given up, so it is ambiguous at once.
                state.finish(engine, batch_id, None, problem.message)
                self._record(self.report.ambiguous, item, problem.message)
                return
            except RateLimited as problem:
                waits += 1
                now = time.time()
                delay = self.retry.rate_limit_wait(problem.reset_at, waits, now)
                give_up = (waits > settings.rate_limit_max_waits
                           or delay > settings.rate_limit_max_wait)
                # While waiting to try again, keep the lease: nobody else takes the batch.
                state.finish(engine, batch_id, BatchState.FAILED, problem.message,
                             release=give_up)
                if give_up:
                    self._record(self.report.failed, item,
                                 f"{problem.message}; the limit resets in {delay:.0f} s, later "
                                 "than this send waits")
                    return
                with self.lock:
                    self.pause_until = max(self.pause_until, now + max(delay, 0.0))
                from_states = (BatchState.FAILED.value,)
                continue
            except Retryable as problem:
                retries += 1
                give_up = retries > settings.max_retries
                state.finish(engine, batch_id, BatchState.FAILED, problem.message,
                             release=give_up)
                if give_up:
                    self._record(self.report.failed, item,
                                 f"{problem.message} (gave up after {retries} attempts)")
                    return
                if self.stop.wait(self.retry.backoff(retries)):
                    return
                from_states = (BatchState.FAILED.value,)
                continue
            state.finish(engine, batch_id, BatchState.ACCEPTED)
            with self.lock:
                self.report.recipients_accepted += item.recipients
                self.report.batches_accepted += 1
            self.progress.advance(item.batch.recipient_count)
            return

    def _send_in_helper(self, item: Work, connection: Connection,
                        from_states: tuple[str, ...]) -> bool:
        """Have a helper process read, build, claim and post the batch.

        False if there is nothing more to do (another sender took it, or everyone
        left the list since the freeze); raises the request's DeliveryProblem.
        """
        assert self.helpers is not None
        batch = item.batch
        done = self.helpers.attempt(batch.number, batch.id, from_states, self.owner,
                                    self.lease)
        item.recipients = done.sent
        if not item.counted:
            item.counted = True
            skipped = done.frozen - done.sent - len(done.refused)
            if skipped > 0:
                with self.lock:
                    self.report.skipped_unsubscribed += skipped
        if not done.claimed:
            return False  # another sender took it
        item.refused = list(done.refused)
        self.tell_refused(item)
        if not done.sent:  # claimed with nobody to send to
            state.finish(connection, batch.id, BatchState.ACCEPTED)
            self.progress.advance(batch.recipient_count)
            return False
        with self.lock:
            self.report.requests += 1
        done.raise_problem()
        return True

    def _send_each(self, item: Work, connection: Connection) -> None:
        """Send a batch message by message, each one's fate written as it happens; then
        finish the batch: accepted, or ambiguous if some messages got no answer."""
        journal = MessageJournal(connection, item.batch.id, item.people,
                                 self.retry_ambiguous)
        try:
            self.transport.send(item.body, item.payload, journal=journal)
        finally:  # a 4xx or a lost connection may stop the batch after some messages
            with self.lock:
                self.report.recipients_accepted += journal.accepted_count
                self.report.bounced += journal.bounced_count
        ambiguous = journal.ambiguous_count()
        if ambiguous:
            message = (f"{ambiguous} message(s) got no answer from the SMTP server (see "
                       "`newsletter status`)")
            state.finish(connection, item.batch.id, None, message)
            with self.lock:
                self.report.ambiguous.append(BatchProblem(item.batch.number, ambiguous,
                                                          message))
        else:
            state.finish(connection, item.batch.id, BatchState.ACCEPTED)
            with self.lock:
                self.report.batches_accepted += 1
        self.progress.advance(item.batch.recipient_count)
