"""Sending from the studio: a test, and a send to a list with live progress.

The same two steps as `newsletter send`: :func:`~newsletter.delivery.planning.plan_send`
(check, render, count: the summary) and, after the user typed the list's name,
:func:`~newsletter.delivery.send.run_send`, here in a background thread whose
progress the page polls.
"""

from __future__ import annotations

import math
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..delivery.planning import SendOptions, SendPlan, check_test_addresses, plan_send
from ..delivery.schedule import parse_at
from ..delivery.send import run_send
from ..delivery.sendreport import Progress, SendReport
from ..errors import NewsletterError
from ..project import Project


@dataclass(frozen=True)
class Summary:
    """What the CLI shows before "Send it?"."""

    rows: list[tuple[str, str]]
    warnings: list[str]
    list_slug: str
    scheduled: bool = False


def summarise(plan: SendPlan) -> Summary:
    """The summary of a plan: issue, subject, list, recipients, transport, warnings."""
    rows = [
        ("Issue", f"{plan.issue.name} (no. {plan.issue.number})"),
        ("Subject", plan.subject),
        ("From", plan.from_line),
        ("List", plan.list_slug if plan.mode != "test"
         else ", ".join(check_test_addresses(plan.options.test_addresses))),
        ("Recipients", f"{plan.recipient_count:,}"),
        ("Transport", plan.transport),
    ]
    if plan.schedule_note:
        rows.append(("Scheduled for", plan.schedule_note))
    if plan.resuming:
        rows.append(("Resuming", f"{plan.already_accepted:,} already accepted; sending the rest"))
    # Warnings name the file as the CLI does, but from the project's folder.
    folder = f"{plan.project.root}/"
    warnings = [warning.replace(folder, "") for warning in plan.warnings]
    return Summary(rows, warnings, plan.list_slug, plan.options.at is not None)


def split_addresses(text: str) -> tuple[str, ...]:
    """'a@x.org, b@y.org' or one per line -> the addresses."""
    return tuple(part for part in re.split(r"[\s,;]+", text) if part)


def send_test(project: Project, path: Path, addresses: str) -> SendReport:
    """Send the issue to the addresses typed (with [TEST] before the subject)."""
    wanted = split_addresses(addresses)
    if not wanted:
        raise NewsletterError("Type at least one address to send the test to.",
                              hint="For example your own: you@example.org.")
    plan = plan_send(project, SendOptions(issue_path=path, test_addresses=wanted))
    return run_send(plan)


def plan_list_send(project: Project, path: Path, list_slug: str | None,
                   at: str = "") -> SendPlan:
    """The plan of a send to a list, now or ``at`` a time (shown before confirming)."""
    when = parse_at(at, project.config.timezone) if at.strip() else None
    return plan_send(project, SendOptions(issue_path=path, list_slug=list_slug or None, at=when))


@dataclass
class SendJob:
    """A send to a list running in the background, as the progress page shows it."""

    id: str
    issue: str
    list_slug: str
    total: int = 0
    done: int = 0
    batches_done: int = 0
    batch_size: int = 1000
    state: str = "starting"  # starting, sending, done, stopped, failed
    report: SendReport | None = None
    error: str = ""
    hint: str = ""
    started: float = field(default_factory=time.monotonic)

    @property
    def batches(self) -> int:
        return max(1, math.ceil(self.total / self.batch_size)) if self.total else 0

    @property
    def finished(self) -> bool:
        return self.state in ("done", "stopped", "failed")


class _JobProgress(Progress):
    def __init__(self, job: SendJob, lock: threading.Lock) -> None:
        self.job, self.lock = job, lock

    def start(self, total: int) -> None:
        with self.lock:
            self.job.total, self.job.state = total, "sending"

    def advance(self, recipients: int) -> None:
        with self.lock:
            self.job.done += recipients
            self.job.batches_done += 1


class SendJobs:
    """The sends started from this studio, by id."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jobs: dict[str, SendJob] = {}

    def start(self, plan: SendPlan) -> SendJob:
        """Run the plan in a background thread; return its job at once."""
        job = SendJob(secrets.token_urlsafe(9), plan.issue.name, plan.list_slug,
                      total=plan.recipient_count, batch_size=plan.settings.batch_size)
        with self.lock:
            self.jobs[job.id] = job
        threading.Thread(target=self._run, args=(job, plan), daemon=True,
                         name=f"studio-send-{job.id}").start()
        return job

    def _run(self, job: SendJob, plan: SendPlan) -> None:
        try:
            report = run_send(plan, progress=_JobProgress(job, self.lock))
        except NewsletterError as exc:
            with self.lock:
                job.state, job.error, job.hint = "failed", exc.message, exc.hint or ""
            return
        except Exception as exc:  # noqa: BLE001 - shown to the user instead of lost
            with self.lock:
                job.state, job.error = "failed", f"The send stopped unexpectedly: {exc}"
                job.hint = "Open the issue again and send to the list again: it resumes."
            return
        with self.lock:
            job.report = report
            job.state = "done" if report.complete else "stopped"
            if not report.complete:
                job.error = report.stopped or "The send is not complete."
                job.hint = "Send to the list again to resume: batches already accepted " \
                    "are never sent twice."

    def get(self, job_id: str) -> SendJob | None:
        """The job called ``job_id``, if this studio started it."""
        with self.lock:
            return self.jobs.get(job_id)
