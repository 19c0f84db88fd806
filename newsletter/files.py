"""Writing files whole: readers and crashes see the old file or the new one, never half."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

NEW_FILE_MODE = 0o644


def atomic_write(
    path: Path, data: bytes | str, *, temp_dir: Path | None = None, durable: bool = True
) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8) in one step.

    The data goes to a temporary file with a unique name (so concurrent writers never
    share one) in ``temp_dir`` (default: the folder of ``path``; it must be on the same
    file system), is flushed to disk, and is then renamed over ``path``. An existing
    file keeps its permissions; a new one gets rw-r--r--. ``durable=False`` skips the
    fsync, for files that can be made again (the outbox's copies of sent messages).
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = NEW_FILE_MODE
    fd, temporary = tempfile.mkstemp(
        dir=temp_dir or path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
            out.flush()
            if durable:
                os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
