"""Planning a send: check, render and count everything, send nothing.

:func:`plan_send` answers the question the command line asks before "send
it?": what goes out, to how many, through which transport, and whether it
resumes an earlier run of the same campaign.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from ..emails import InvalidEmail, normalise_email
from ..errors import NewsletterError
from ..issue import Issue
from ..pipeline import check_and_render
from ..preflight import Report, run_preflight
from ..project import Project
from ..render import RenderedEmail
from ..retry import RetryPolicy
from ..store import Database, count_recipients, get_list, open_project_database
from ..tokens import project_secret
from . import campaign as state
from .leases import DEFAULT_HEARTBEAT, DEFAULT_LEASE, end_dead_leases, lease_settings
from .messages import counts as message_counts
from .messages import sent_since
from .models import BatchState, Campaign, CampaignStatus
from .overview import IN_FLIGHT, state_counts
from .requests import MAX_PERSONALIZATIONS, TEST_PREFIX, RequestBuilder, Schedule
from .safety import refuse, send_safety
from .schedule import check_schedule
from .smtp import password_from_env as smtp_password
from .transports import api_key_from_env, transport_name

Mode = Literal["send", "test", "dry-run", "sandbox"]


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
    # Helper processes sending large sendgrid sends (at least this many, as many as
    # [delivery] concurrency; 0 or 1: none).
    build_processes: int = 2
    # How long a sender holds a batch without renewing, and how often it renews
    # (see .leases; settable through the environment for tests).
    lease_seconds: float = DEFAULT_LEASE
    heartbeat_seconds: float = DEFAULT_HEARTBEAT

    @classmethod
    def from_project(cls, project: Project, **overrides: Any) -> SendSettings:
        """Settings from newsletter.toml, with ``overrides`` (None values ignored)."""
        delivery = project.config.delivery
        lease, heartbeat = lease_settings()
        settings = cls(
            batch_size=delivery.batch_size,
            concurrency=delivery.concurrency,
            timeout=delivery.timeout,
            max_retries=delivery.max_retries,
            lease_seconds=lease,
            heartbeat_seconds=heartbeat,
        )
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})

    def retry_policy(self) -> RetryPolicy:
        """The shared retry policy (newsletter.retry) with this send's base and cap."""
        return RetryPolicy(base=self.backoff_base, cap=self.backoff_cap)


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
    preflight: Literal["skip", "offline", "full"] = "skip"  # the CLI asks for "full"
    force: bool = False  # send even when preflight finds errors
    allow_placeholders: bool = False  # send an issue still holding TODO, TK, lorem...


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
    ambiguous: int = 0  # recipients in batches left in submitting, lease run out
    ambiguous_batches: int = 0
    in_flight: int = 0  # recipients in requests another live sender is waiting on
    schedule_note: str = ""
    daily_note: str = ""  # SMTP: how the send fits [smtp] per_day
    warnings: list[str] = field(default_factory=list)
    database: Database | None = field(default=None, repr=False)
    preflight: Report | None = None

    @property
    def resuming(self) -> bool:
        return self.campaign_id is not None

    def request_builder(self, campaign_id: int | None = None,
                        schedule: Schedule | None = None) -> RequestBuilder:
        """The builder of this plan's Mail Send bodies (for ``campaign_id``, if recorded)."""
        return RequestBuilder(
            self.project.config, self.rendered, issue_name=self.issue.name,
            list_slug=self.list_slug, secret=self.secret, campaign_id=campaign_id,
            subject_prefix=TEST_PREFIX if self.mode == "test" else "", schedule=schedule,
            sandbox=self.options.sandbox,
        )


def resolve_secret(project: Project, transport: str) -> tuple[bytes, str]:
    """(secret, where it came from) for signing links: :func:`newsletter.tokens.project_secret`.

    The same secret for every transport and for `newsletter serve` (``transport`` is
    kept for callers; it no longer changes the answer).
    """
    secret = project_secret(project.root)
    return secret, secret.source


def plan_send(
    project: Project, options: SendOptions, settings: SendSettings | None = None
) -> SendPlan:
    """Check, render and count everything; send nothing.

    Raises NewsletterError if the issue has errors, the list is unknown or empty,
    the issue was already sent to the list, or a secret or key is missing.
    """
    explicit_settings = settings
    settings = settings or SendSettings.from_project(project)
    config = project.config
    # One parse and one render serve both the check and the send.
    result, rendered = check_and_render(project, options.issue_path)
    if result.errors or result.issue is None or rendered is None:
        raise NewsletterError(
            f"{options.issue_path} has {len(result.errors)} error(s):\n  "
            + "\n  ".join(str(d) for d in result.errors),
            hint=f"Fix them, then run `newsletter check {options.issue_path}`.",
        )
    issue = result.issue
    transport = transport_name(project, options.transport)
    if transport == "sendgrid" and not options.dry_run:
        api_key_from_env()  # fail now, before the question, if the key is missing
    if transport == "smtp":
        if not options.dry_run:
            smtp_password(config.smtp)  # fail now if the host or password is missing
        if explicit_settings is None:
            settings = replace(settings, concurrency=config.smtp.connections)
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
    safety = send_safety(
        project, issue, to_list=mode == "send", real_transport=transport != "outbox",
        allow_placeholders=options.allow_placeholders,
        send_day=options.at.astimezone(config.zone).date() if options.at else None,
    )
    refuse(safety, str(options.issue_path))
    plan.warnings += safety.warnings
    if options.preflight != "skip":
        plan.preflight = run_preflight(project, options.issue_path, issue=issue, rendered=rendered,
                                       offline=options.preflight == "offline")
        if plan.preflight.errors and mode == "send" and not options.force:
            raise NewsletterError(plan.preflight.refusal(), hint="Fix them (`newsletter preflight "
                                  f"{options.issue_path}` shows details), or add --force.")
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
        if transport == "smtp":
            raise NewsletterError(
                "Scheduling (--at) needs the sendgrid transport; an SMTP server has no "
                "scheduling service, so the smtp transport sends at once.",
                hint="Leave out --at and run the command at the time you want (cron or a "
                "scheduled task can), or use --transport sendgrid.",
            )
        if transport != "sendgrid":
            raise NewsletterError(
                "Scheduling (--at) needs the sendgrid transport; the outbox writes at once.",
                hint="Add --transport sendgrid (with SENDGRID_API_KEY set), or leave out --at.",
            )
        plan.schedule_note = f"{options.at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
    if mode == "test":
        plan.subject = TEST_PREFIX + rendered.subject
        plan.list_slug = options.list_slug or "(test)"
        plan.recipient_count = len(check_test_addresses(options.test_addresses))
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
            return _check_daily_cap(plan)
        return _check_daily_cap(_plan_resume(plan, existing))
    except BaseException:
        database.dispose()
        raise


def _plan_resume(plan: SendPlan, existing: Campaign) -> SendPlan:
    assert plan.database is not None
    end_dead_leases(plan.database.engine, existing.id)
    counts = state_counts(plan.database.engine, existing.id)
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
    plan.in_flight = counts[IN_FLIGHT].recipients
    if plan.transport == "smtp":  # the server answered each message: count messages
        messages = message_counts(plan.database.engine, existing.id)
        plan.already_accepted = messages.accepted
        plan.ambiguous = messages.ambiguous
        plan.in_flight = messages.in_flight
        todo = plan.recipient_count = messages.todo(plan.options.retry_ambiguous)
    if todo == 0:
        if plan.in_flight:
            raise NewsletterError(
                f"{plan.issue.name} is being sent to {plan.list_slug!r} by another `newsletter "
                f"send` right now: {plan.in_flight} recipients are in requests waiting for "
                "SendGrid's answer, and nothing is left for a second sender.",
                hint=f"Let it finish; `newsletter status {plan.options.issue_path}` shows "
                "its progress.",
            )
        if plan.ambiguous and plan.transport == "smtp":
            raise NewsletterError(
                f"{plan.issue.name} went to {plan.list_slug!r} except {plan.ambiguous} "
                "message(s) whose connection broke after they were sent, before the SMTP "
                "server answered: they may or may not have been delivered.",
                hint=f"`newsletter status {plan.options.issue_path}` names them; check the "
                "service's logs, and to send them again (some may get it twice) add "
                "--retry-ambiguous.",
            )
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


def _check_daily_cap(plan: SendPlan) -> SendPlan:
    """SMTP with [smtp] per_day: say how the send fits the cap; refuse one that does not.

    The cap counts the last 24 hours (the services' own caps mostly roll), from the
    messages recorded for every SMTP send of this project.
    """
    cap = plan.project.config.smtp.per_day
    if plan.transport != "smtp" or not cap or plan.mode != "send" or plan.database is None:
        return plan
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=24)
    used = sent_since(plan.database.engine, since)
    left = max(0, cap - used)
    plan.daily_note = (f"{plan.recipient_count:,} of the {left:,} messages [smtp] per_day "
                       f"({cap:,}) still allows in the last 24 hours")
    if plan.recipient_count > left:
        raise NewsletterError(
            f"This send has {plan.recipient_count:,} recipients, but [smtp] per_day allows "
            f"{cap:,} messages in 24 hours and {used:,} went out in the last 24 hours: only "
            f"{left:,} can go now. SMTP cannot schedule the rest for later.",
            hint="Send to a smaller list (move some members to a second list and send each "
            "on its own day), raise [smtp] per_day if your plan allows more, or use "
            "--transport sendgrid.",
        )
    return plan


def check_test_addresses(addresses: tuple[str, ...]) -> list[str]:
    """The --test addresses normalised and without repeats; NewsletterError if one is invalid."""
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

