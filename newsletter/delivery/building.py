"""Building request bodies in helper processes: the CPU-bound part of a large send.

Reading a batch's recipients, signing their unsubscribe links and encoding the
JSON costs about 4 ms per 1000 recipients, all under Python's global lock. With
more than one CPU, a few forked helper processes build the bodies while the
main process only claims, posts and records them. The helpers never write to
the database and never talk to SendGrid, so everything that makes a send safe
(claim before, record after) stays in the main process.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from sqlalchemy import Engine

from ..dbengine import make_engine
from .campaign import RecipientReader
from .requests import RequestBuilder

# Set in each helper process by _start.
_reader: RecipientReader | None = None
_builder: RequestBuilder | None = None


def can_fork() -> bool:
    """Helper processes need fork (Linux, macOS) and more than one CPU."""
    return "fork" in multiprocessing.get_all_start_methods() and (os.cpu_count() or 1) > 1


def _start(parent_engine: Engine, url: str, list_id: int, campaign_id: int,
           builder: RequestBuilder) -> None:
    global _reader, _builder
    # Ctrl-C is the main process's to handle; the helpers just stop with it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent(os.getppid())
    # Never touch the parent's pooled connections from here.
    parent_engine.dispose(close=False)
    # One pooled connection per helper for all its batches, not one per batch.
    _reader = RecipientReader(make_engine(url), list_id, campaign_id)
    _builder = builder


def _exit_with_parent(parent: int) -> None:
    """Leave as soon as the main process is gone (killed, even with SIGKILL)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _build(number: int) -> tuple[int, int, bytes]:
    """(frozen count, recipients in the request, its JSON) for batch ``number``."""
    assert _reader is not None and _builder is not None
    frozen, recipients = _reader.read(number)
    if not recipients:
        return frozen, 0, b""
    return frozen, len(recipients), _builder.payload(recipients, number)[1]


class ParallelBuilder:
    """A pool of helper processes building batches in order, a few ahead at most."""

    def __init__(self, engine: Engine, url: str, list_id: int, campaign_id: int,
                 builder: RequestBuilder, processes: int) -> None:
        self.processes = processes
        self.pool = ProcessPoolExecutor(
            processes, mp_context=multiprocessing.get_context("fork"), initializer=_start,
            initargs=(engine, url, list_id, campaign_id, builder),
        )
        self.pending: deque[Future[tuple[int, int, bytes]]] = deque()
        self.todo: Iterator[int] = iter(())

    def start(self, numbers: Iterable[int]) -> None:
        """Queue the first batches (this forks the helpers: call it before starting threads).

        At most two per process are queued at any time, so memory stays
        bounded however many batches there are.
        """
        self.todo = iter(numbers)
        for number in self.todo:
            self.pending.append(self.pool.submit(_build, number))
            if len(self.pending) >= 2 * self.processes:
                break

    def __iter__(self) -> Iterator[tuple[int, int, bytes]]:
        """(frozen count, recipients, JSON) of each batch, in the order given to start."""
        while self.pending:
            result = self.pending.popleft().result()
            following = next(self.todo, None)
            if following is not None:
                self.pending.append(self.pool.submit(_build, following))
            yield result

    def close(self) -> None:
        """Stop the helpers (work not yet started is dropped)."""
        for future in self.pending:
            future.cancel()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ParallelBuilder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
