"""Third-party tools some tests run (SpamAssassin, Java with the Nu validator).

In CI (CI=true) a missing tool fails the test: `make test` installs them all. Elsewhere
the test is skipped, naming the command that installs the tool.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VNU_JAR = REPO / "bench" / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"


def missing(what: str, install: str) -> None:
    """Fail (in CI) or skip (elsewhere) because ``what`` is not installed."""
    message = f"{what} is not installed; run `{install}` (or `make test`, which does)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def require_binary(name: str, install: str) -> str:
    """The path of program ``name``, or fail/skip saying how to install it."""
    found = shutil.which(name)
    if found is None:
        missing(name, install)
    assert found is not None
    return found


def require_vnu() -> tuple[str, Path]:
    """(java, vnu.jar) for the Nu HTML validator."""
    java = require_binary("java", "sudo apt-get install -y default-jre-headless")
    if not VNU_JAR.exists():
        missing("The Nu HTML validator (vnu-jar)", "npm install --prefix bench")
    return java, VNU_JAR
