"""Wait for a condition instead of sleeping and hoping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float = 10.0, message: str = "",
               interval: float = 0.01) -> T:
    """Call ``condition`` until it returns something truthy; return that.

    Fails the test with ``message`` when ``timeout`` seconds pass first. The
    condition is always tried once more after the deadline, so a slow machine
    that got there just in time still passes.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            value = condition()
            if value:
                return value
            raise AssertionError(f"gave up after {timeout:g} s: {message or condition!r}")
        time.sleep(interval)
