"""Sending an issue: plan (check, render, count), then deliver in batches from a few threads.

Two steps so the command line can ask for confirmation in between::

    plan = plan_send(project, SendOptions(issue_path, list_slug="weekly"))
    print(plan.subject, plan.recipient_count)          # the summary
    report = run_send(plan)                            # after "yes"

Never twice, never lost: a send to a list is a campaign whose recipients are
frozen into numbered batches when it starts. Each batch is claimed (pending or
failed → submitting) just before its request and marked accepted or failed
just after. Running the same command again resumes; accepted batches are never
sent again, and batches left in submitting (the answer never came) are
"ambiguous" and only sent again with ``retry_ambiguous``.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import queue
import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection

from ..errors import NewsletterError
from ..issue import Issue, load_issue
from ..pipeline import check_issue
from ..project import Project
from ..render import RenderedEmail, render_email
from ..store import Database, count_recipients, get_list, open_project_database
from ..store.emails import InvalidEmail, normalise_email
from ..tokens import SECRET_ENV, secret_from_env
from . import campaign as state
from .building import ParallelBuilder, can_fork
from .models import BatchState, CampaignStatus
from .requests import (
    MAX_PERSONALIZATIONS,
    MAX_SCHEDULE_AHEAD,
    TEST_PREFIX,
    RequestBuilder,
    Schedule,
)
from .transports import (
    Ambiguous,
    AuthProblem,
    DeliveryProblem,
    RateLimited,
    Rejected,
    Retryable,
    Transport,
    api_key_from_env,
    open_transport,
    transport_name,
)

Mode = Literal["send", "test", "dry-run", "sandbox"]
SECRET_FILE = ".secret"


@dataclass(frozen=True)
class SendSettings:
    """How hard to try. Defaults come from [delivery] in newsletter.toml."""

    batch_size: int = 1000
    concurrency: int = 4
    timeout: float = 30.0
    max_retries: int = 5
    backoff_base: float = 1.0  # first retry after about this many seconds, then doubling
    backoff_cap: float = 60.0
    rate_limit_max_wait: float = 300.0  # a 429 whose reset is further off stops the batch
    rate_limit_max_waits: int = 20
    # Helper processes building request bodies for large sendgrid sends (0: none).
    build_processes: int = 2

    @classmethod
    def from_project(cls, project: Project, **overrides: Any) -> SendSettings:
        """Settings from newsletter.toml, with ``overrides`` (None values ignored)."""
        delivery = project.config.delivery
        settings = cls(
            batch_size=delivery.batch_size,
            concurrency=delivery.concurrency,
            timeout=delivery.timeout,
            max_retries=delivery.max_retries,
        )
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1, 2, ...): exponential, jittered."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return ceiling * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class SendOptions:
    """What `newsletter send` was asked to do."""

    issue_path: Path
    list_slug: str | None = None
    transport: str | None = None
    test_addresses: tuple[str, ...] = ()
    dry_run: bool = False
    sandbox: bool = False
    at: dt.datetime | None = None
    retry_ambiguous: bool = False


@dataclass
class SendPlan:
    """Everything checked and counted before the question "send it?"."""

    project: Project
    options: SendOptions
    settings: SendSettings
    mode: Mode
    issue: Issue
    rendered: RenderedEmail
    subject: str
    from_line: str
    list_slug: str
    transport: str
    recipient_count: int  # people this run will send to
    secret: bytes | None = field(default=None, repr=False)
    secret_source: str = ""
    campaign_id: int | None = None  # an existing campaign this run resumes
    already_accepted: int = 0
    ambiguous: int = 0  # recipients in batches left in submitting
    ambiguous_batches: int = 0
    schedule_note: str = ""
    warnings: list[str] = field(default_factory=list)
    database: Database | None = field(default=None, repr=False)

    @property
    def resuming(self) -> bool:
        return self.campaign_id is not None


@dataclass
class BatchProblem:
    """A batch that did not end accepted in this run."""

    number: int
    recipients: int
    message: str


@dataclass
class SendReport:
    """What a run did."""

    mode: Mode
    transport: str
    campaign_id: int | None = None
    requests: int = 0
    recipients_accepted: int = 0
    batches_accepted: int = 0
    failed: list[BatchProblem] = field(default_factory=list)
    ambiguous: list[BatchProblem] = field(default_factory=list)
    skipped_unsubscribed: int = 0
    stopped: str = ""  # why the whole send stopped early (401/403, interrupted)
    interrupted: bool = False
    complete: bool = False
    elapsed: float = 0.0
    bytes_built: int = 0
    largest_request: int = 0
    outbox: Path | None = None
    total_ambiguous: int = 0  # recipients in ambiguous batches, this run or earlier

    @property
    def rate(self) -> float:
        """Recipients handed over per second."""
        return self.recipients_accepted / self.elapsed if self.elapsed > 0 else 0.0


class Progress:
    """Receives progress from the send (called from worker threads)."""

    def start(self, total: int) -> None:  # noqa: B027 - optional hook
        """``total`` recipients are about to be sent."""

    def advance(self, recipients: int) -> None:  # noqa: B027 - optional hook
        """``recipients`` more were handed over (or given up on)."""


# --- scheduling --------------------------------------------------------------------------


_AT = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})[ T](\d{1,2}:\d{2})(?::(\d{2}))?\s*(\S+)?\s*$")


def parse_at(text: str, default_zone: str = "UTC") -> dt.datetime:
    """'2026-12-01 09:00 Europe/Berlin' (or an ISO time with offset) as an aware datetime."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
        if value.tzinfo is not None:
            return value
    except ValueError:
        pass
    match = _AT.match(text)
    if not match:
        raise NewsletterError(
            f"--at {text!r}: expected a date, a time and a time zone, like "
            "'2026-12-01 09:00 Europe/Berlin'.",
            hint='Write it as --at "YYYY-MM-DD HH:MM Zone/City".',
        )
    day, clock, seconds, zone = match.groups()
    zone = zone or default_zone
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise NewsletterError(
            f"--at {text!r}: unknown time zone {zone!r}; expected a name like Europe/Berlin "
            "or UTC.",
            hint='e.g. --at "2026-12-01 09:00 Europe/Berlin".',
        ) from None
    try:
        return dt.datetime.fromisoformat(f"{day}T{clock}:{seconds or '00'}").replace(tzinfo=tz)
    except ValueError:
        raise NewsletterError(
            f"--at {text!r}: not a real date and time.", hint="Check the day and the hour."
        ) from None


def check_schedule(when: dt.datetime, now: dt.datetime | None = None) -> dt.datetime:
    """``when`` in UTC if it is in the future and at most 72 hours ahead (SendGrid's limit)."""
    now = now or dt.datetime.now(dt.UTC)
    when = when.astimezone(dt.UTC)
    if when <= now + dt.timedelta(minutes=1):
        raise NewsletterError(
            f"--at {when:%Y-%m-%d %H:%M} UTC is not in the future.",
            hint="Pick a later time, or leave out --at to send now.",
        )
    if when - now > MAX_SCHEDULE_AHEAD:
        raise NewsletterError(
            f"--at {when:%Y-%m-%d %H:%M} UTC is more than 72 hours ahead; SendGrid schedules "
            "at most 72 hours in advance.",
            hint="Run the send command again closer to the time.",
        )
    return when


# --- the secret that signs unsubscribe links ---------------------------------------------


def resolve_secret(project: Project, transport: str) -> tuple[bytes, str]:
    """(secret, where it came from) for signing unsubscribe links.

    NEWSLETTER_SECRET always wins. Only the outbox transport, which delivers
    nothing, falls back to a per-project secret made once in subscribers/.secret,
    so the sample project works without any setup.
    """
    if os.environ.get(SECRET_ENV) or transport != "outbox":
        return secret_from_env(), SECRET_ENV
    path = project.subscribers_dir / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    value = path.read_text(encoding="utf-8").strip()
    if len(value) < 16:
        raise NewsletterError(
            f"{path} is too short to sign links safely.",
            hint=f"Delete it (a new one is made), or set {SECRET_ENV}.",
        )
    relative = path.relative_to(project.root) if path.is_relative_to(project.root) else path
    return value.encode(), str(relative)


# --- planning ----------------------------------------------------------------------------


def plan_send(
    project: Project, options: SendOptions, settings: SendSettings | None = None
) -> SendPlan:
    """Check, render and count everything; send nothing.

    Raises NewsletterError if the issue has errors, the list is unknown or empty,
    the issue was already sent to the list, or a secret or key is missing.
    """
    settings = settings or SendSettings.from_project(project)
    config = project.config
    result = check_issue(project, options.issue_path)
    if result.errors or result.issue is None:
        raise NewsletterError(
            f"{options.issue_path} has {len(result.errors)} error(s):\n  "
            + "\n  ".join(str(d) for d in result.errors),
            hint=f"Fix them, then run `newsletter check {options.issue_path}`.",
        )
    issue = load_issue(options.issue_path, project.issue_files())
    rendered = render_email(project, issue, for_sending=True)
    transport = transport_name(project, options.transport)
    if transport == "sendgrid" and not options.dry_run:
        api_key_from_env()  # fail now, before the question, if the key is missing
    mode: Mode = (
        "test" if options.test_addresses
        else "dry-run" if options.dry_run
        else "sandbox" if options.sandbox
        else "send"
    )
    if options.sandbox and transport != "sendgrid":
        raise NewsletterError(
            "--sandbox is SendGrid's sandbox mode; it needs the sendgrid transport.",
            hint="Add --transport sendgrid, or use --dry-run to build the requests locally.",
        )
    if mode == "send" and getattr(issue.model, "draft", False):
        raise NewsletterError(
            f"{options.issue_path} is marked draft: true.",
            hint="Remove the draft line when the issue is ready, or use --test to try it.",
        )
    sender = config.sender
    from_line = f"{sender.from_name or config.name} <{sender.from_email}>"
    plan = SendPlan(
        project=project, options=options, settings=settings, mode=mode, issue=issue,
        rendered=rendered, subject=rendered.subject, from_line=from_line,
        list_slug=options.list_slug or config.delivery.default_list, transport=transport,
        recipient_count=0,
    )
    plan.warnings = [str(d) for d in result.warnings]
    if transport == "sendgrid" and not config.service_url.startswith("https://"):
        plan.warnings.append(
            f"newsletter.toml: web_url {config.service_url!r} is not https; Gmail and Yahoo "
            "ignore one-click unsubscribe links that are not https, and require them of bulk "
            "senders"
        )
    if options.at is not None:
        if mode == "test":
            raise NewsletterError("--at cannot be used with --test.", hint="Leave out --at.")
        check_schedule(options.at)
        if transport != "sendgrid":
            raise NewsletterError(
                "Scheduling (--at) needs the sendgrid transport; the outbox writes at once.",
                hint="Add --transport sendgrid (with SENDGRID_API_KEY set), or leave out --at.",
            )
        plan.schedule_note = f"{options.at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
    if mode == "test":
        plan.subject = TEST_PREFIX + rendered.subject
        plan.list_slug = options.list_slug or "(test)"
        plan.recipient_count = len(_test_addresses(options.test_addresses))
        return plan
    if not plan.list_slug:
        raise NewsletterError(
            "Which list? No --list given and no [delivery] default_list in newsletter.toml.",
            hint=f"Run `newsletter send {options.issue_path} --list weekly` (see `newsletter "
            "lists`).",
        )
    plan.secret, plan.secret_source = resolve_secret(project, transport)
    database = open_project_database(project)
    plan.database = database
    try:
        with database.session() as session:
            get_list(session, plan.list_slug)
            existing = state.find_campaign(session, issue.name, plan.list_slug, transport)
            current = count_recipients(session, plan.list_slug)
        if mode != "send" or existing is None or existing.status == CampaignStatus.CANCELLED:
            plan.recipient_count = current
            if current == 0:
                raise NewsletterError(
                    f"The list {plan.list_slug!r} has no subscribed recipients.",
                    hint="Add some with `newsletter subscribers import FILE --list "
                    f"{plan.list_slug}`, or check `newsletter lists`.",
                )
            return plan
        return _plan_resume(plan, existing)
    except BaseException:
        database.dispose()
        raise


def _plan_resume(plan: SendPlan, existing: state.Campaign) -> SendPlan:
    assert plan.database is not None
    counts = state.state_counts(plan.database.engine, existing.id)
    plan.campaign_id = existing.id
    plan.already_accepted = counts[BatchState.ACCEPTED].recipients
    plan.ambiguous = counts[BatchState.SUBMITTING].recipients
    plan.ambiguous_batches = counts[BatchState.SUBMITTING].batches
    todo = counts[BatchState.PENDING].recipients + counts[BatchState.FAILED].recipients
    if plan.options.retry_ambiguous:
        todo += plan.ambiguous
    plan.recipient_count = todo
    when = existing.send_at
    if plan.options.at is not None and when is not None and plan.options.at != when:
        raise NewsletterError(
            f"This send was scheduled for {when:%Y-%m-%d %H:%M} UTC when it started; a "
            "resumed send keeps that time.",
            hint="Run the same command without --at to resume it.",
        )
    if when is not None:
        plan.schedule_note = f"{when:%Y-%m-%d %H:%M} UTC (as first scheduled)"
    if todo == 0:
        if plan.ambiguous:
            raise NewsletterError(
                f"{plan.issue.name} went to {plan.list_slug!r} except {plan.ambiguous_batches} "
                f"batch(es), {plan.ambiguous} recipients, whose requests got no answer: "
                "SendGrid may or may not have accepted them.",
                hint="Check SendGrid's Activity feed for those recipients; to send them "
                "again (some may get it twice), add --retry-ambiguous.",
            )
        raise NewsletterError(
            f"{plan.issue.name} was already sent to {plan.list_slug!r} "
            f"({plan.already_accepted} recipients, via {plan.transport}); not sending it twice.",
            hint=f"See `newsletter status {plan.options.issue_path}`.",
        )
    return plan


def _test_addresses(addresses: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for address in addresses:
        try:
            out.append(normalise_email(address))
        except InvalidEmail as exc:
            raise NewsletterError(
                f"--test {address!r} is not a valid email address: {exc}",
                hint="Check the spelling, e.g. --test you@example.org.",
            ) from None
    if len(out) > MAX_PERSONALIZATIONS:
        raise NewsletterError("--test takes at most 1000 addresses.", hint="Use fewer.")
    return list(dict.fromkeys(out))


# --- running -----------------------------------------------------------------------------


def run_send(
    plan: SendPlan,
    *,
    progress: Progress | None = None,
    transport: Transport | None = None,
) -> SendReport:
    """Carry out a plan from :func:`plan_send`: test, dry run or the real (resumable) send.

    Raises NewsletterError when SendGrid refuses the key or sender (401/403), after
    recording every batch's state. Ctrl-C stops after the requests in flight.
    """
    progress = progress or Progress()
    started = time.perf_counter()
    folder = plan.issue.name if plan.mode == "send" else f"{plan.issue.name}-test"
    if transport is None and plan.mode != "dry-run":
        transport = open_transport(
            plan.project, plan.transport, folder=folder, timeout=plan.settings.timeout
        )
    report = SendReport(mode=plan.mode, transport=plan.transport)
    if plan.transport == "outbox" and plan.mode != "dry-run":
        report.outbox = plan.project.outbox_dir / folder
    try:
        if plan.mode == "test":
            _run_test(plan, transport, report, progress)  # type: ignore[arg-type]
        elif plan.mode in ("dry-run", "sandbox"):
            _run_unrecorded(plan, transport, report, progress)
        else:
            with _fewer_collections():
                _Campaign(plan, transport, report, progress).run()  # type: ignore[arg-type]
    finally:
        if transport is not None:
            transport.close()
        if plan.database is not None:
            plan.database.dispose()
        report.elapsed = time.perf_counter() - started
    return report


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


def _builder(plan: SendPlan, campaign_id: int | None = None,
             schedule: Schedule | None = None) -> RequestBuilder:
    return RequestBuilder(
        plan.project.config, plan.rendered, issue_name=plan.issue.name,
        list_slug=plan.list_slug, secret=plan.secret, campaign_id=campaign_id,
        subject_prefix=TEST_PREFIX if plan.mode == "test" else "", schedule=schedule,
        sandbox=plan.options.sandbox,
    )


def _run_test(plan: SendPlan, transport: Transport, report: SendReport,
              progress: Progress) -> None:
    addresses = _test_addresses(plan.options.test_addresses)
    progress.start(len(addresses))
    body, payload = _builder(plan).payload([(None, a, "") for a in addresses])
    _send_unrecorded(transport, body, payload, plan.settings)
    report.requests = 1
    report.recipients_accepted = len(addresses)
    report.batches_accepted = 1
    report.complete = True
    progress.advance(len(addresses))


def _send_unrecorded(transport: Transport, body: dict[str, Any], payload: bytes,
                     settings: SendSettings) -> None:
    """Send one request of a test or sandbox run: retried, but nothing is written down."""
    attempts = 0
    while True:
        try:
            transport.send(body, payload)
            return
        except (Retryable, RateLimited) as problem:
            attempts += 1
            if attempts > settings.max_retries:
                raise _problem_error(problem) from None
            wait = settings.backoff(attempts)
            if isinstance(problem, RateLimited) and problem.reset_at:
                wait = min(max(problem.reset_at - time.time(), 0.0),
                           settings.rate_limit_max_wait)
            time.sleep(wait)
        except DeliveryProblem as problem:
            raise _problem_error(problem) from None


def _problem_error(problem: DeliveryProblem) -> NewsletterError:
    if isinstance(problem, AuthProblem):
        return NewsletterError(problem.message, hint="Fix it, then run the same command again.")
    return NewsletterError(problem.message, hint="Run the same command again.")


def _run_unrecorded(plan: SendPlan, transport: Transport | None, report: SendReport,
                    progress: Progress) -> None:
    """Dry run (build only) or sandbox run (send with sandbox_mode): nothing recorded."""
    from ..store import iter_recipients

    assert plan.database is not None
    builder = _builder(plan, campaign_id=0)
    progress.start(plan.recipient_count)
    chunk: list[Any] = []
    size = plan.settings.batch_size

    def build(number: int) -> None:
        body, payload = builder.payload(chunk, number)
        if transport is not None:
            _send_unrecorded(transport, body, payload, plan.settings)
        report.requests += 1
        report.recipients_accepted += len(chunk)
        report.bytes_built += len(payload)
        report.largest_request = max(report.largest_request, len(payload))
        progress.advance(len(chunk))

    for recipient in iter_recipients(plan.database.engine, plan.list_slug):
        chunk.append(recipient)
        if len(chunk) == size:
            build(report.requests + 1)
            chunk = []
    if chunk:
        build(report.requests + 1)
    report.batches_accepted = report.requests if transport is not None else 0
    report.complete = True


@dataclass
class _Work:
    batch: state.BatchRef
    recipients: int
    body: dict[str, Any] | None
    payload: bytes
    from_states: tuple[str, ...]


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
        self.fatal: DeliveryProblem | None = None
        self.lock = threading.Lock()
        self.pause_until = 0.0
        self.work: queue.Queue[_Work | None] = queue.Queue(
            maxsize=max(1, self.settings.concurrency)
        )

    # -- setup --

    def _open_campaign(self) -> int:
        plan = self.plan
        if plan.campaign_id is not None:
            return plan.campaign_id
        with plan.database.session() as session:  # type: ignore[union-attr]
            existing = state.find_campaign(session, plan.issue.name, plan.list_slug,
                                           plan.transport)
        if existing is not None and existing.status != CampaignStatus.CANCELLED:
            raise NewsletterError(
                f"Another send of {plan.issue.name} to {plan.list_slug!r} started meanwhile.",
                hint=f"See `newsletter status {plan.options.issue_path}`; run the same command "
                "again to resume it once that one has stopped.",
            )
        if existing is not None:  # a cancelled scheduled send: start afresh
            state.delete_campaign(self.engine, existing.id)
        send_at = batch_id = None
        if plan.options.at is not None:
            send_at = check_schedule(plan.options.at)
            batch_id = self._guarded(self.transport.create_batch_id)
        return state.create_campaign(
            self.engine, issue_name=plan.issue.name, list_slug=plan.list_slug,
            transport=plan.transport, subject=plan.subject, batch_size=self.settings.batch_size,
            send_at=send_at, sendgrid_batch_id=batch_id,
        )

    def _guarded(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except DeliveryProblem as problem:
            raise _problem_error(problem) from None

    # -- the run --

    def run(self) -> None:
        plan, report = self.plan, self.report
        campaign_id = self._open_campaign()
        report.campaign_id = campaign_id
        with plan.database.session() as session:  # type: ignore[union-attr]
            campaign = session.get(state.Campaign, campaign_id)
            assert campaign is not None
            list_id = get_list(session, plan.list_slug).id
            schedule = (
                Schedule(campaign.send_at, campaign.sendgrid_batch_id)
                if campaign.send_at is not None and campaign.sendgrid_batch_id
                else None
            )
        builder = _builder(plan, campaign_id, schedule)
        wanted = [BatchState.PENDING.value, BatchState.FAILED.value]
        if plan.options.retry_ambiguous:
            wanted.append(BatchState.SUBMITTING.value)
        todo = state.batch_refs(self.engine, campaign_id, wanted)
        self.progress.start(sum(b.recipient_count for b in todo))
        helpers = self._helpers(todo, builder, list_id, campaign_id)
        workers = [
            threading.Thread(target=self._worker, name=f"send-{i}", daemon=True)
            for i in range(max(1, self.settings.concurrency))
        ]
        for worker in workers:
            worker.start()
        try:
            self._produce(todo, builder, list_id, helpers)
            self._join(workers)
        except KeyboardInterrupt:
            # Let the requests in flight finish and record their answers (a second
            # Ctrl-C leaves at once: those batches then stay ambiguous).
            report.interrupted = True
            report.stopped = "interrupted (Ctrl-C); the requests in flight were finished"
            self.stop.set()
            self._join(workers)
        except BaseException:
            # Building failed (say, the database went away): finish what is in flight,
            # so every batch's state is true, then let the error out.
            self.stop.set()
            self._join(workers)
            raise
        finally:
            if helpers is not None:
                helpers.close()
        self._finish_report(campaign_id)
        if isinstance(self.fatal, AuthProblem):
            raise NewsletterError(
                self.fatal.message + f" Nothing more was sent; {report.recipients_accepted} "
                "recipients were accepted before the refusal.",
                hint="Fix it, then run the same command again to send the rest.",
            )

    def _helpers(self, todo: list[state.BatchRef], builder: RequestBuilder, list_id: int,
                 campaign_id: int) -> ParallelBuilder | None:
        """Helper processes building the bodies, for large sends through SendGrid."""
        processes = min(self.settings.build_processes, len(todo) // 4)
        if processes < 2 or self.transport.name != "sendgrid" or not can_fork():
            return None
        helpers = ParallelBuilder(self.engine, self.plan.database.url,  # type: ignore[union-attr]
                                  list_id, campaign_id, builder, processes)
        helpers.start(batch.number for batch in todo)
        return helpers

    def _built(self, todo: list[state.BatchRef], builder: RequestBuilder, list_id: int,
               helpers: ParallelBuilder | None,
               ) -> Iterator[tuple[state.BatchRef, int, int, dict[str, Any] | None, bytes]]:
        """(batch, frozen count, recipients, body, JSON) for each batch, in order."""
        if helpers is not None:
            for batch, (frozen, sent, payload) in zip(todo, helpers, strict=True):
                yield batch, frozen, sent, None, payload
            return
        reader = state.RecipientReader(self.engine, list_id, self.report.campaign_id or 0)
        for batch in todo:
            frozen, recipients = reader.read(batch.number)
            if not recipients:
                yield batch, frozen, 0, None, b""
                continue
            body, payload = builder.payload(recipients, batch.number)
            yield batch, frozen, len(recipients), body, payload

    def _produce(self, todo: list[state.BatchRef], builder: RequestBuilder, list_id: int,
                 helpers: ParallelBuilder | None) -> None:
        for batch, frozen, sent, body, payload in self._built(todo, builder, list_id, helpers):
            if self.stop.is_set():
                return
            skipped = frozen - sent
            if skipped:
                with self.lock:
                    self.report.skipped_unsubscribed += skipped
            from_states = (batch.state,)
            if not sent:  # everyone left the list since the freeze
                if state.claim(self.engine, batch.id, from_states, 0):
                    state.finish(self.engine, batch.id, BatchState.ACCEPTED)
                self.progress.advance(batch.recipient_count)
                continue
            item = _Work(batch, sent, body, payload, from_states)
            while not self.stop.is_set():
                try:
                    self.work.put(item, timeout=0.2)
                    break
                except queue.Full:
                    continue

    def _join(self, workers: list[threading.Thread]) -> None:
        """Tell the workers to finish, and wait for them.

        After a stop, work not yet started is thrown away (its batches stay
        pending or failed).
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
            self._work_on(connection)

    def _work_on(self, connection: Connection) -> None:
        while True:
            item = self.work.get()
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

    def _record(self, bucket: list[BatchProblem], item: _Work, message: str) -> None:
        with self.lock:
            bucket.append(BatchProblem(item.batch.number, item.recipients, message))
        self.progress.advance(item.batch.recipient_count)

    def _deliver(self, item: _Work, engine: Connection) -> None:
        settings, batch_id = self.settings, item.batch.id
        retries = waits = 0
        from_states = item.from_states
        while True:
            self._wait_for_rate_limit()
            if self.stop.is_set():
                return
            if not state.claim(engine, batch_id, from_states, item.recipients):
                return  # another sender took it
            with self.lock:
                self.report.requests += 1
            try:
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
                state.finish(engine, batch_id, None, problem.message)  # stays submitting
                self._record(self.report.ambiguous, item, problem.message)
                return
            except RateLimited as problem:
                state.finish(engine, batch_id, BatchState.FAILED, problem.message)
                waits += 1
                now = time.time()
                delay = (problem.reset_at - now) if problem.reset_at else settings.backoff(waits)
                if waits > settings.rate_limit_max_waits or delay > settings.rate_limit_max_wait:
                    self._record(self.report.failed, item,
                                 f"{problem.message}; the limit resets in {delay:.0f} s, later "
                                 "than this send waits")
                    return
                with self.lock:
                    self.pause_until = max(self.pause_until, now + max(delay, 0.0))
                from_states = (BatchState.FAILED.value,)
                continue
            except Retryable as problem:
                state.finish(engine, batch_id, BatchState.FAILED, problem.message)
                retries += 1
                if retries > settings.max_retries:
                    self._record(self.report.failed, item,
                                 f"{problem.message} (gave up after {retries} attempts)")
                    return
                if self.stop.wait(settings.backoff(retries)):
                    return
                from_states = (BatchState.FAILED.value,)
                continue
            state.finish(engine, batch_id, BatchState.ACCEPTED)
            with self.lock:
                self.report.recipients_accepted += item.recipients
                self.report.batches_accepted += 1
            self.progress.advance(item.batch.recipient_count)
            return

    def _finish_report(self, campaign_id: int) -> None:
        report = self.report
        report.complete = state.mark_sent_if_complete(self.engine, campaign_id)
        counts = state.state_counts(self.engine, campaign_id)
        report.total_ambiguous = counts[BatchState.SUBMITTING].recipients
        if self.fatal is not None and not report.stopped:
            report.stopped = self.fatal.message


# --- status and cancelling ---------------------------------------------------------------


def campaigns_status(project: Project, issue_path: Path | None = None) -> list[
        state.CampaignOverview]:
    """Campaigns (of one issue file, if given), newest first, with counts per batch state."""
    database = open_project_database(project)
    try:
        return state.overview(database.engine, issue_path.stem if issue_path else None)
    finally:
        database.dispose()


@dataclass(frozen=True)
class CancelResult:
    """A cancelled scheduled send."""

    issue_name: str
    list_slug: str
    send_at: dt.datetime
    recipients: int


def cancel_send(
    project: Project,
    issue_path: Path,
    list_slug: str | None = None,
    *,
    transport: Transport | None = None,
    now: dt.datetime | None = None,
) -> CancelResult:
    """Cancel a scheduled send of an issue to a list (POST /v3/user/scheduled_sends).

    SendGrid can cancel until 10 minutes before the send time. Afterwards the
    campaign is marked cancelled, so the issue can be sent or scheduled again.
    """
    slug = list_slug or project.config.delivery.default_list
    database = open_project_database(project)
    try:
        with database.session() as session:
            found = state.find_campaign(session, issue_path.stem, slug, "sendgrid")
        if found is None or not found.sendgrid_batch_id or found.send_at is None:
            raise NewsletterError(
                f"There is no scheduled send of {issue_path.stem} to {slug!r}.",
                hint=f"See `newsletter status {issue_path}`.",
            )
        if found.status == CampaignStatus.CANCELLED:
            raise NewsletterError(
                f"The scheduled send of {issue_path.stem} to {slug!r} was already cancelled.",
                hint=f"See `newsletter status {issue_path}`.",
            )
        now = now or dt.datetime.now(dt.UTC)
        if found.send_at - now < dt.timedelta(minutes=10):
            raise NewsletterError(
                f"It is too late to cancel: the send starts at {found.send_at:%Y-%m-%d %H:%M} "
                "UTC, and SendGrid cancels only until 10 minutes before.",
                hint="The issue goes out as scheduled.",
            )
        chosen = transport or open_transport(project, "sendgrid",
                                             timeout=project.config.delivery.timeout)
        try:
            chosen.cancel_scheduled(found.sendgrid_batch_id)
        except DeliveryProblem as problem:
            raise _problem_error(problem) from None
        finally:
            if transport is None:
                chosen.close()
        state.set_status(database.engine, found.id, CampaignStatus.CANCELLED)
        return CancelResult(found.issue_name, slug, found.send_at, found.recipient_count)
    finally:
        database.dispose()
