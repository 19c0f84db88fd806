"""Sending from helper processes: the CPU-bound part of a large send, spread over the CPUs.

Per request of 1000 recipients, reading the batch, signing the unsubscribe links and
building the body cost about 6 ms, and the sendgrid package's own work on it (its
standard-library JSON encoding, and the debug message it formats with the whole body
whether or not anything logs it) about 20 ms more, all under Python's global lock.
With more than one CPU, a few forked helper processes each take one reserved batch at a
time and do it all: read, build, **claim** (the same one-UPDATE claim as the main
process, for the main process's sender id, before anything leaves), post through the
sendgrid package's public interface, and report the outcome. The main process writes
every outcome (accepted, failed, ambiguous), decides about retries and rate limits,
keeps the leases alive and stops the helpers.

A helper that dies mid-request leaves its batch in submitting: ambiguous, never sent
twice. Helpers leave as soon as the main process is gone, even after SIGKILL.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from ..dbengine import make_engine
from . import problems
from .batchrecipients import RecipientReader
from .campaign import claim
from .requests import RequestBuilder
from .transports import DeliveryProblem, Transport

# Set in each helper process by _start.
_reader: RecipientReader | None = None
_builder: RequestBuilder | None = None
_transport: Transport | None = None
_parent = 0


def can_fork() -> bool:
    """Helper processes need fork (Linux, macOS) and more than one CPU."""
    return "fork" in multiprocessing.get_all_start_methods() and (os.cpu_count() or 1) > 1


@dataclass(frozen=True)
class Attempt:
    """What a helper did with one batch."""

    frozen: int  # recipients frozen into the batch
    sent: int  # of them still subscribed: the request's recipients
    claimed: bool  # False: another sender holds it now (nothing was sent)
    # The DeliveryProblem, as (class name, message, attributes): exceptions with
    # arguments of their own do not survive pickling whole.
    problem: tuple[str, str, dict[str, Any]] | None = field(default=None)
    # (id, email, name) of those left out for good (see .refusals), recorded by the claim.
    refused: tuple[tuple[int, str, str], ...] = ()

    def raise_problem(self) -> None:
        """Raise the helper's DeliveryProblem here, as it was raised there (if any)."""
        if self.problem is None:
            return
        name, message, attributes = self.problem
        kind = getattr(problems, name)
        if not (isinstance(kind, type) and issubclass(kind, DeliveryProblem)):
            raise DeliveryProblem(message)
        error = kind.__new__(kind)
        Exception.__init__(error, message)
        error.__dict__.update(attributes)
        raise error


def _start(parent_engine: Engine, url: str, list_id: int, campaign_id: int,
           builder: RequestBuilder, transport: Transport) -> None:
    global _reader, _builder, _transport, _parent
    # Ctrl-C is the main process's to handle; the helpers just stop with it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _parent = os.getppid()
    _exit_with_parent(_parent)
    # Never touch the parent's pooled connections from here.
    parent_engine.dispose(close=False)
    # One pooled connection per helper for all its batches, not one per batch.
    _reader = RecipientReader(make_engine(url), list_id, campaign_id)
    _builder = builder
    _transport = transport


def _ready() -> bool:
    return True


def _exit_with_parent(parent: int) -> None:
    """Leave as soon as the main process is gone (killed, even with SIGKILL)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _attempt(number: int, batch_id: int, from_states: Sequence[str], owner: str,
             lease: float) -> Attempt:
    """Read, build, claim and post batch ``number`` (see the module docstring)."""
    assert _reader is not None and _builder is not None and _transport is not None
    if os.getppid() != _parent:  # the main process is gone: claim nothing more
        os._exit(0)
    frozen, recipients, refused = _reader.read(number)
    body = _builder.body(recipients, number) if recipients else None
    if not claim(_reader.engine, batch_id, from_states, len(recipients), owner, lease,
                 refused):
        return Attempt(frozen, len(recipients), False, refused=tuple(refused))
    if body is None:  # everyone left the list since the freeze: nothing to post
        return Attempt(frozen, 0, True, refused=tuple(refused))
    try:
        _transport.send(body)
    except DeliveryProblem as problem:
        state = (type(problem).__name__, str(problem.args[0]), dict(problem.__dict__))
        return Attempt(frozen, len(recipients), True, state, tuple(refused))
    return Attempt(frozen, len(recipients), True, refused=tuple(refused))


class HelperSenders:
    """A pool of forked helper processes, each sending one batch at a time."""

    def __init__(self, engine: Engine, url: str, list_id: int, campaign_id: int,
                 builder: RequestBuilder, transport: Transport, processes: int) -> None:
        self.processes = processes
        self.pool = ProcessPoolExecutor(
            processes, mp_context=multiprocessing.get_context("fork"), initializer=_start,
            initargs=(engine, url, list_id, campaign_id, builder, transport),
        )
        # Fork now, before the sending threads start (fork copies only the calling thread).
        self.pool.submit(_ready).result()

    def attempt(self, number: int, batch_id: int, from_states: Sequence[str], owner: str,
                lease: float) -> Attempt:
        """Have a helper read, build, claim and post one batch; what it did.

        Waits for the answer (call it from a sending thread). Raises whatever
        unexpected error the helper met (a DeliveryProblem comes back in the Attempt).
        """
        return self.pool.submit(_attempt, number, batch_id, tuple(from_states), owner,
                                lease).result()

    def close(self) -> None:
        """Stop the helpers once the batches they are sending are done."""
        self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> HelperSenders:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
