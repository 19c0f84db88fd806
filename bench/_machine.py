"""One line describing this machine, for the figures in docs/performance.md."""

from __future__ import annotations

import os
import platform
import sqlite3
from pathlib import Path


def machine() -> str:
    """'2 CPUs (AMD EPYC), Python 3.11.7, SQLite 3.40.1, Linux, load 1.2'."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = f", load {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return (f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}, {platform.system()}{load}")
