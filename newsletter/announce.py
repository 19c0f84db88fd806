"""Who hears which database a command opened: the command line prints it, serve logs it.

Apart from the store so that naming the listener loads no database library: every
command names it, and `newsletter check` never opens a database (start-up time).
"""

from __future__ import annotations

from collections.abc import Callable

_listeners: list[Callable[[str], None]] = []


def announce_to(callback: Callable[[str], None] | None) -> None:
    """Have the store report each database it opens to ``callback`` (None: stop)."""
    _listeners[:] = [callback] if callback else []


def listener() -> Callable[[str], None] | None:
    """The callback given to :func:`announce_to`, if any."""
    return _listeners[0] if _listeners else None
