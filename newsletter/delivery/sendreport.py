"""What a send tells its caller: the report, the progress hooks, the error that stops it.

Every kind of send fills in a :class:`SendReport` (the recorded runner, test sends
and dry runs alike), calls a :class:`Progress` as recipients are handed over, and
turns a delivery problem that stops the whole send into a ``NewsletterError``
with :func:`problem_error`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import NewsletterError
from .leases import HeldElsewhere
from .planning import Mode
from .problems import AuthProblem, DeliveryProblem


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
    # Unfinished batches other live senders hold, and recipients nobody holds yet.
    elsewhere: HeldElsewhere = field(default_factory=HeldElsewhere)
    left_over: int = 0
    bounced: int = 0  # recipients an SMTP server refused (marked bounced in the store)
    # Addresses left out for good because no mail server accepts them (see .refusals).
    refused: list[str] = field(default_factory=list)

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

    def stopping(self) -> None:  # noqa: B027 - optional hook
        """Ctrl-C: no new requests start; those in flight are being finished."""


def problem_error(problem: DeliveryProblem) -> NewsletterError:
    """The message (and what to do next) for a delivery problem that stops a send."""
    if isinstance(problem, AuthProblem):
        return NewsletterError(problem.message, hint="Fix it, then run the same command again.")
    return NewsletterError(problem.message, hint="Run the same command again.")
