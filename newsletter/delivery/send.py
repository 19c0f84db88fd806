"""Sending an issue: the one entry point that carries out a plan, whatever its mode.

Two steps so the command line can ask for confirmation in between::

    plan = plan_send(project, SendOptions(issue_path, list_slug="weekly"))
    print(plan.subject, plan.recipient_count)          # the summary
    report = run_send(plan)                            # after "yes"

:func:`run_send` chooses: a test or a dry/sandbox run (:mod:`.trial`, nothing
recorded) or the real, resumable send of a campaign (:mod:`.runner`).
"""

from __future__ import annotations

import time

from .planning import SendPlan
from .runner import run_campaign
from .sendreport import Progress, SendReport
from .transports import Transport, open_transport
from .trial import run_test, run_unrecorded

__all__ = ["run_send"]


def run_send(
    plan: SendPlan,
    *,
    progress: Progress | None = None,
    transport: Transport | None = None,
) -> SendReport:
    """Carry out a plan from :func:`.planning.plan_send`: test, dry run or the real send.

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
            run_test(plan, transport, report, progress)  # type: ignore[arg-type]
        elif plan.mode in ("dry-run", "sandbox"):
            run_unrecorded(plan, transport, report, progress)
        else:
            run_campaign(plan, transport, report, progress)  # type: ignore[arg-type]
    finally:
        if transport is not None:
            transport.close()
        if plan.database is not None:
            plan.database.dispose()
        report.elapsed = time.perf_counter() - started
    return report

