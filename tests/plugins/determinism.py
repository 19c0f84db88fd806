"""Seeded randomness: every test gets the same random numbers on every run.

The session seed comes from NEWSLETTER_TEST_SEED (default 20210201) and is shown
in pytest's header and under every failing test. Before each test, the global
``random`` module is seeded from the session seed and the test's id, so a test's
numbers do not depend on which other tests ran before it. Tests that want their
own generator take the ``rng`` fixture (seeded the same way).

To replay a failure: NEWSLETTER_TEST_SEED=<seed shown> pytest <test id>.
"""

from __future__ import annotations

import os
import random
from collections.abc import Generator

import pytest

SEED_ENV = "NEWSLETTER_TEST_SEED"
DEFAULT_SEED = 20210201


def session_seed() -> int:
    """The seed of this test run (NEWSLETTER_TEST_SEED, else the fixed default)."""
    raw = os.environ.get(SEED_ENV, "").strip()
    if not raw:
        return DEFAULT_SEED
    try:
        return int(raw)
    except ValueError:
        raise pytest.UsageError(f"{SEED_ENV} must be a whole number, got {raw!r}") from None


def seed_for(nodeid: str) -> str:
    """The seed of one test: the session seed and the test's id (stable across runs)."""
    return f"{session_seed()}:{nodeid}"


def pytest_report_header(config: pytest.Config) -> str:
    """Show the seed at the top of every run."""
    return f"random seed: {session_seed()} (replay with {SEED_ENV}={session_seed()})"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Seed the global ``random`` before each test (and before its fixtures)."""
    random.seed(seed_for(item.nodeid))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, object, None]:
    """Name the seed under every failing test, so the failure can be replayed."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed:
        report.sections.append(
            ("random seed", f"{SEED_ENV}={session_seed()} (this test: {seed_for(item.nodeid)!r})")
        )


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """A generator of this test's own, seeded from the session seed and the test id."""
    return random.Random(seed_for(request.node.nodeid))
