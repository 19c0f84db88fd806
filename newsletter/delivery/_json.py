"""Fast JSON: orjson when installed, else the standard library (same output, slower)."""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson

    def dumps(value: Any) -> bytes:
        """Compact UTF-8 JSON."""
        return orjson.dumps(value)

    def loads(data: bytes | str) -> Any:
        """Parse JSON; raises ValueError."""
        return orjson.loads(data)

except ImportError:  # pragma: no cover - orjson is a declared dependency

    def dumps(value: Any) -> bytes:
        """Compact UTF-8 JSON."""
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()

    def loads(data: bytes | str) -> Any:
        """Parse JSON; raises ValueError."""
        return json.loads(data)
