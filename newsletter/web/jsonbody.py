"""Reading JSON sent by strangers: bounded nesting, and one plain error for anything wrong."""

from __future__ import annotations

from typing import Any

import orjson

# Sign-ups are flat objects and webhook batches are arrays of flat objects; nothing
# we accept nests deeper than a few levels.
MAX_DEPTH = 32


class BadJSON(ValueError):
    """The body is not JSON we accept; ``str()`` is a plain reason safe to show."""


def load_json(body: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """The value in ``body``, or BadJSON if it is not UTF-8 JSON nested at most ``max_depth``.

    orjson itself refuses nesting beyond 1024 levels without recursing in Python;
    the walk below then enforces the much smaller limit without recursion either.
    """
    try:
        data = orjson.loads(body)
    except (ValueError, RecursionError, TypeError, MemoryError):
        raise BadJSON("the body is not valid JSON") from None
    if _too_deep(data, max_depth):
        raise BadJSON(f"the JSON is nested more than {max_depth} levels deep")
    return data


def _too_deep(data: Any, max_depth: int) -> bool:
    """True if ``data`` nests lists and objects more than ``max_depth`` levels."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, (dict, list)))
    return False
