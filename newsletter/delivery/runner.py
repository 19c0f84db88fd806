"""Running a recorded campaign: its batches reserved, built and handed to worker threads.

Never twice, never lost: a send to a list is a campaign whose recipients are
frozen into numbered batches when it starts. A sender reserves a few batches
at a time (see :mod:`.leases`), claims each (pending or failed → submitting)
just before its request and marks it accepted or failed just after. Running
the same command again resumes, or joins a send running elsewhere; accepted
batches are never sent again, and batches left in submitting whose lease ran
out (the answer never came) are "ambiguous" and only sent again with
``retry_ambiguous``.

This module is the run as a whole: it opens (or joins) the campaign, reserves
batches, builds their requests (or leaves that to helper processes), queues them
for the worker threads, stops them on Ctrl-C, and sums up the report. What a
worker does with one batch, and how its answer is recorded, is :mod:`.batchsend`;
the report itself is :mod:`.sendreport`.
"""

from __future__ import annotations

import gc
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import NewsletterError
from ..store import get_list
from . import campaign as state
from .batchrecipients import BatchPeople, RecipientReader
from .batchsend import BatchSender, Work
from .building import HelperSenders, can_fork
from .leases import (
    Heartbeat,
    Reserved,
    count_free,
    end_dead_leases,
    held_elsewhere,
    new_sender_id,
    release_all,
    reserve,
)
from .messages import counts as message_counts
from .models import BatchState, Campaign, CampaignStatus
from .overview import IN_FLIGHT, state_counts
from .planning import SendPlan
from .requests import RequestBuilder, Schedule
from .schedule import check_schedule
from .sendreport import Progress, SendReport, problem_error
from .transports import AuthProblem, DeliveryProblem, Transport


def run_campaign(plan: SendPlan, transport: Transport, report: SendReport,
                 progress: Progress) -> None:
    """Send (or resume) the plan's campaign, filling in ``report``.

    Raises NewsletterError when SendGrid refuses the key or sender (401/403), after
    recording every batch's state. Ctrl-C stops after the requests in flight.
    """
    with _fewer_collections():
        _Campaign(plan, transport, report, progress).run()


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector rarely while sending.

    A send makes millions of short-lived dicts that reference counting frees;
    the collector's frequent passes over them cost about a fifth of a large
    send's CPU time. Objects made before the send are frozen out of its passes.
    """
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


# Batches reserved at a time: few, so that senders sharing a campaign share it evenly.
RESERVE_AT_ONCE = 4


class _Campaign:
    """One run over a campaign's batches: the main thread builds, workers post."""

    def __init__(self, plan: SendPlan, transport: Transport, report: SendReport,
                 progress: Progress) -> None:
        assert plan.database is not None
        self.plan = plan
        self.settings = plan.settings
        self.engine = plan.database.engine
        self.transport = transport
        self.report = report
        self.progress = progress
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.work: queue.Queue[Work | None] = queue.Queue(
            maxsize=max(1, self.settings.concurrency)
        )
        self.owner = new_sender_id()
        self.lease = self.settings.lease_seconds
        self.helpers: HelperSenders | None = None
        self.sender = BatchSender(self.settings, transport, report, progress, self.stop,
                                  self.lock, self.owner, plan.options.retry_ambiguous)
        self.per_recipient = self.sender.per_recipient

    # -- setup --

    def _open_campaign(self) -> int:
        plan = self.plan
        if plan.campaign_id is not None:
            return plan.campaign_id
        with plan.database.session() as session:  # type: ignore[union-attr]
            existing = state.find_campaign(session, plan.issue.name, plan.list_slug,
                                           plan.transport)
        if existing is not None and existing.status != CampaignStatus.CANCELLED:
            return existing.id  # another send started it meanwhile: join it
        if existing is not None:  # a cancelled scheduled send: start afresh
            state.delete_campaign(self.engine, existing.id)
        send_at = batch_id = None
        if plan.options.at is not None:
            send_at = check_schedule(plan.options.at)
            batch_id = self._guarded(self.transport.create_batch_id)
        try:
            return state.create_campaign(
                self.engine, issue_name=plan.issue.name, list_slug=plan.list_slug,
                transport=plan.transport, subject=plan.subject,
                batch_size=self.settings.batch_size, send_at=send_at,
                sendgrid_batch_id=batch_id,
            )
        except NewsletterError:
            with plan.database.session() as session:  # type: ignore[union-attr]
                existing = state.find_campaign(session, plan.issue.name, plan.list_slug,
                                               plan.transport)
            if existing is None or existing.status == CampaignStatus.CANCELLED:
                raise
            return existing.id  # created by another send at the same moment: join it

    def _guarded(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except DeliveryProblem as problem:
            raise problem_error(problem) from None

    # -- the run --

    def run(self) -> None:
        plan, report = self.plan, self.report
        campaign_id = self._open_campaign()
        report.campaign_id = campaign_id
        with plan.database.session() as session:  # type: ignore[union-attr]
            campaign = session.get(Campaign, campaign_id)
            assert campaign is not None
            list_id = get_list(session, plan.list_slug).id
            schedule = (
                Schedule(campaign.send_at, campaign.sendgrid_batch_id)
                if campaign.send_at is not None and campaign.sendgrid_batch_id
                else None
            )
        builder = plan.request_builder(campaign_id, schedule)
        wanted = [BatchState.PENDING.value, BatchState.FAILED.value]
        if plan.options.retry_ambiguous or self.per_recipient:
            # Per-recipient records say which messages of a broken-off batch went out.
            wanted.append(BatchState.SUBMITTING.value)
        end_dead_leases(self.engine, campaign_id)
        available, recipients = count_free(self.engine, campaign_id, wanted)
        self.progress.start(recipients)
        heartbeat = Heartbeat(self.engine, self.owner, self.lease,
                              self.settings.heartbeat_seconds).start()
        todo = self._reserved(campaign_id, wanted)
        try:
            self._send_all(todo, available, builder, list_id, campaign_id)
        finally:
            heartbeat.stop()
            release_all(self.engine, self.owner)
        self._finish_report(campaign_id)
        if isinstance(self.sender.fatal, AuthProblem):
            raise NewsletterError(
                self.sender.fatal.message + f" Nothing more was sent; {report.recipients_accepted} "
                "recipients were accepted before the refusal.",
                hint="Fix it, then run the same command again to send the rest.",
            )

    def _reserved(self, campaign_id: int, wanted: list[str]) -> Iterator[Reserved]:
        """The batches this sender reserves, a few at a time, until none is free."""
        while not self.stop.is_set():
            with state.relaxed_commits(self.engine) as connection:
                taken = reserve(connection, campaign_id, wanted, self.owner, self.lease,
                                RESERVE_AT_ONCE)
            if not taken and end_dead_leases(self.engine, campaign_id):
                continue  # a sender on this host died holding batches: take them
            if not taken:
                return
            yield from taken

    def _send_all(self, todo: Iterator[Reserved], available: int, builder: RequestBuilder,
                  list_id: int, campaign_id: int) -> None:
        report = self.report
        self.helpers = self._helpers(available, builder, list_id, campaign_id)
        self.sender.helpers = self.helpers
        workers = [
            threading.Thread(target=self._worker, name=f"send-{i}", daemon=True)
            for i in range(max(1, self.settings.concurrency))
        ]
        for worker in workers:
            worker.start()
        try:
            self._produce(todo, builder, list_id)
            self._join(workers)
        except KeyboardInterrupt:
            # Let the requests in flight finish and record their answers (a second
            # Ctrl-C leaves at once: those batches then stay ambiguous).
            report.interrupted = True
            report.stopped = "interrupted (Ctrl-C); the requests in flight were finished"
            self.stop.set()
            self.progress.stopping()
            self._join(workers)
        except BaseException:
            # Building failed (say, the database went away): finish what is in flight,
            # so every batch's state is true, then let the error out.
            self.stop.set()
            self._join(workers)
            raise
        finally:
            if self.helpers is not None:
                self.helpers.close()

    def _helpers(self, available: int, builder: RequestBuilder, list_id: int,
                 campaign_id: int) -> HelperSenders | None:
        """Helper processes that build, claim and post, for large sends through SendGrid.

        As many as requests in flight (at least ``build_processes``), so that
        waiting for SendGrid's answers never leaves a CPU idle.
        """
        wanted = max(self.settings.build_processes, self.settings.concurrency)
        processes = min(wanted, available // 4)
        if (self.settings.build_processes < 2 or processes < 2
                or self.transport.name != "sendgrid" or not can_fork()):
            return None
        return HelperSenders(self.engine, self.plan.database.url,  # type: ignore[union-attr]
                             list_id, campaign_id, builder, self.transport, processes)

    def _built(self, todo: Iterator[Reserved], builder: RequestBuilder, list_id: int,
               ) -> Iterator[tuple[Reserved, BatchPeople, dict[str, Any] | None, bytes]]:
        """(batch, who it goes to, body, JSON) for each batch, in order."""
        reader = RecipientReader(self.engine, list_id, self.report.campaign_id or 0)
        for batch in todo:
            read = reader.read(batch.number)
            if not read.people:
                yield batch, read, None, b""
                continue
            if self.per_recipient:  # the transport builds from the dict: skip the JSON
                yield batch, read, builder.body(read.people, batch.number), b""
                continue
            body, payload = builder.payload(read.people, batch.number)
            yield batch, read, body, payload

    def _queue(self, item: Work) -> None:
        while not self.stop.is_set():
            try:
                self.work.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def _produce(self, todo: Iterator[Reserved], builder: RequestBuilder, list_id: int,
                 ) -> None:
        if self.helpers is not None:
            # The helpers read and build each batch themselves, just before its claim.
            for batch in todo:
                if self.stop.is_set():
                    return
                self._queue(Work(batch, batch.recipient_count, None, b"", (batch.state,)))
            return
        for batch, read, body, payload in self._built(todo, builder, list_id):
            if self.stop.is_set():
                return
            sent = len(read.people)
            skipped = read.frozen - sent - len(read.refused)
            if skipped:
                with self.lock:
                    self.report.skipped_unsubscribed += skipped
            from_states = (batch.state,)
            work = Work(batch, sent, body, payload, from_states, read.people,
                        refused=read.refused)
            if not sent:  # everyone left the list since the freeze (or was refused)
                if state.claim(self.engine, batch.id, from_states, 0, self.owner, self.lease,
                               read.refused):
                    self.sender.tell_refused(work)
                    state.finish(self.engine, batch.id, BatchState.ACCEPTED)
                self.progress.advance(batch.recipient_count)
                continue
            self._queue(work)

    def _join(self, workers: list[threading.Thread]) -> None:
        """Tell the workers to finish, and wait for them.

        After a stop, work not yet started is thrown away (its batches stay
        pending or failed, and their reservations are released at the end).
        """
        if self.stop.is_set():
            while True:
                try:
                    self.work.get_nowait()
                except queue.Empty:
                    break
        for _ in workers:
            self.work.put(None)
        for worker in workers:
            worker.join()

    def _worker(self) -> None:
        with self.engine.connect() as connection:
            self.sender.work_on(connection, self.work)

    def _finish_report(self, campaign_id: int) -> None:
        report = self.report
        report.complete = state.mark_sent_if_complete(self.engine, campaign_id)
        counts = state_counts(self.engine, campaign_id)
        report.total_ambiguous = counts[BatchState.SUBMITTING].recipients
        report.elsewhere = held_elsewhere(self.engine, campaign_id, self.owner)
        # Unfinished, and nobody is working on it: a later run must send it.
        unfinished = sum(counts[s].recipients for s in (BatchState.PENDING, BatchState.FAILED,
                                                         BatchState.SUBMITTING))
        unfinished += counts[IN_FLIGHT].recipients
        report.left_over = max(0, unfinished - report.elsewhere.recipients)
        if self.per_recipient:  # count messages, not the batches holding them
            messages = message_counts(self.engine, campaign_id)
            report.total_ambiguous = messages.ambiguous
            report.left_over = max(0, messages.unsent - report.elsewhere.recipients)
        if self.sender.fatal is not None and not report.stopped:
            report.stopped = self.sender.fatal.message

