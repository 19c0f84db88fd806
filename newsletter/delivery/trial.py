"""Test and dry-run sends: requests that are sent (or only built) but never recorded.

A test goes to a few addresses given on the command line; a dry run builds
every request of a list without sending; a sandbox run sends them with
SendGrid's sandbox_mode. None of them creates a campaign.
"""

from __future__ import annotations

import time
from typing import Any

from ..store import iter_recipients
from . import refusals
from .planning import SendPlan, SendSettings, check_test_addresses
from .sendreport import Progress, SendReport, problem_error
from .transports import DeliveryProblem, RateLimited, Retryable, Transport


def run_test(plan: SendPlan, transport: Transport, report: SendReport,
             progress: Progress) -> None:
    """Send the issue, subject marked as a test, to the --test addresses in one request."""
    addresses = check_test_addresses(plan.options.test_addresses)
    progress.start(len(addresses))
    body, payload = plan.request_builder().payload([(None, a, "") for a in addresses])
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
    policy = settings.retry_policy()
    while True:
        try:
            transport.send(body, payload)
            return
        except (Retryable, RateLimited) as problem:
            attempts += 1
            if attempts > settings.max_retries:
                raise problem_error(problem) from None
            if isinstance(problem, RateLimited):
                wait = min(policy.rate_limit_wait(problem.reset_at, attempts),
                           settings.rate_limit_max_wait)
            else:
                wait = policy.backoff(attempts)
            time.sleep(wait)
        except DeliveryProblem as problem:
            raise problem_error(problem) from None


def run_unrecorded(plan: SendPlan, transport: Transport | None, report: SendReport,
                   progress: Progress) -> None:
    """Dry run (build only) or sandbox run (send with sandbox_mode): nothing recorded."""
    assert plan.database is not None
    builder = plan.request_builder(campaign_id=0)
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
        if refusals.refused(recipient.email):  # as a recorded send would: left out
            report.refused.append(recipient.email)
            progress.advance(1)
            continue
        chunk.append(recipient)
        if len(chunk) == size:
            build(report.requests + 1)
            chunk = []
    if chunk:
        build(report.requests + 1)
    report.batches_accepted = report.requests if transport is not None else 0
    report.complete = True

