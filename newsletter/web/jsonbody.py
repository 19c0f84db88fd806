"""Reading JSON sent by strangers: bounded nesting, and one plain error for anything wrong."""

from __future__ import annotations

from itertools import chain
from typing import Any

import orjson

# Sign-ups are flat objects and webhook batches are arrays of flat objects; nothing
# we accept nests deeper than a few levels.
MAX_DEPTH = 32
_NESTING = frozenset({dict, list})


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
    """True if ``data`` (as orjson built it) nests lists and objects over ``max_depth`` levels.

    One level at a time, each gathered in C (``chain``) and filtered by exact type
    (orjson makes plain dicts and lists only): a webhook batch, an array of flat
    objects, is three short levels, not a Python step per value.
    """
    level: list[Any] = [data] if data.__class__ in _NESTING else []
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            return True
        level = [child for child in chain.from_iterable(
            value.values() if value.__class__ is dict else value for value in level)
            if child.__class__ in _NESTING]
    return False
