"""The one retry policy: seeded backoff, and rate-limit headers read in one place."""

from __future__ import annotations

import email.utils
from random import Random

import pytest

from newsletter.delivery.problems import (
    AuthProblem,
    RateLimited,
    Rejected,
    Retryable,
    classify,
)
from newsletter.retry import RetryPolicy, reset_time

NOW = 1_700_000_000.0


def test_backoff_doubles_up_to_the_cap_with_jitter_from_the_seeded_rng() -> None:
    policy = RetryPolicy(base=1.0, cap=10.0, rng=Random(42))
    waits = [policy.backoff(attempt) for attempt in range(1, 7)]
    expected_rng = Random(42)
    ceilings = [1, 2, 4, 8, 10, 10]
    assert waits == [c * expected_rng.uniform(0.5, 1.0) for c in ceilings]
    for wait, ceiling in zip(waits, ceilings, strict=True):
        assert ceiling * 0.5 <= wait <= ceiling
    # The same seed gives the same waits; another seed does not.
    again = RetryPolicy(base=1.0, cap=10.0, rng=Random(42))
    assert [again.backoff(a) for a in range(1, 7)] == waits
    other = RetryPolicy(base=1.0, cap=10.0, rng=Random(43))
    assert [other.backoff(a) for a in range(1, 7)] != waits


def test_backoff_matches_the_senders_formula() -> None:
    """ceiling = min(cap, base * 2 ** (attempt - 1)); wait = ceiling * uniform(0.5, 1)."""
    policy = RetryPolicy(base=0.25, cap=3.0, rng=Random(1))
    reference = Random(1)
    for attempt in range(1, 9):
        ceiling = min(3.0, 0.25 * 2 ** (attempt - 1))
        assert policy.backoff(attempt) == ceiling * reference.uniform(0.5, 1.0)


def test_rate_limit_wait_is_until_the_reset_else_backoff() -> None:
    policy = RetryPolicy(rng=Random(3))
    assert policy.rate_limit_wait(NOW + 12.5, 1, now=NOW) == 12.5
    assert policy.rate_limit_wait(NOW - 5, 1, now=NOW) == 0.0  # already past: go
    assert policy.rate_limit_wait(None, 3, now=NOW) == RetryPolicy(rng=Random(3)).backoff(3)


@pytest.mark.parametrize(("headers", "expected"), [
    ({"X-RateLimit-Reset": str(int(NOW) + 30)}, NOW + 30),
    ({"x-ratelimit-reset": f"{NOW + 1.5:.3f}"}, NOW + 1.5),  # any case, fractions
    ({"Retry-After": "7"}, NOW + 7),
    ({"Retry-After": "0"}, NOW),
    ({"Retry-After": email.utils.formatdate(NOW + 90, usegmt=True)}, NOW + 90),
    # Retry-After wins over X-RateLimit-Reset.
    ({"Retry-After": "3", "X-RateLimit-Reset": str(int(NOW) + 60)}, NOW + 3),
    # Unreadable values are ignored (falling back to the other header, or None).
    ({"Retry-After": "soon", "X-RateLimit-Reset": str(int(NOW) + 60)}, NOW + 60),
    ({"Retry-After": "-4"}, None),
    ({"Retry-After": "Thu, 99 Foo 2024 99:00:00"}, None),
    ({"Retry-After": "Thu, 01 Feb 2024 10:00:00"}, None),  # no zone: not an HTTP date
    ({"X-RateLimit-Reset": "tomorrow"}, None),
    ({"X-RateLimit-Reset": "nan"}, None),
    ({"X-RateLimit-Reset": "inf"}, None),
    ({"X-RateLimit-Reset": ""}, None),
    ({}, None),
    (None, None),
])
def test_reset_time_reads_both_headers(headers: dict[str, str] | None,
                                       expected: float | None) -> None:
    assert reset_time(headers, now=NOW) == pytest.approx(expected)


def test_reset_time_reads_http_message_headers() -> None:
    """python_http_client hands over an http.client.HTTPMessage (case-insensitive)."""
    from email.message import Message

    message = Message()
    message["x-ratelimit-reset"] = str(int(NOW) + 4)
    assert reset_time(message, now=NOW) == NOW + 4


def test_classify_keeps_each_kind_of_answer_apart() -> None:
    body = b'{"errors": [{"field": "from", "message": "bad", "help": null}]}'
    assert isinstance(classify(401, body, {}), AuthProblem)
    assert isinstance(classify(403, body, {}), AuthProblem)
    assert isinstance(classify(500, b"", {}), Retryable)
    assert isinstance(classify(503, b"not json", {}), Retryable)
    rejected = classify(400, body, {})
    assert isinstance(rejected, Rejected) and rejected.errors[0]["field"] == "from"
    assert "from: bad" in rejected.message
    limited = classify(429, b"", {"X-RateLimit-Reset": str(int(NOW) + 20)})
    assert isinstance(limited, RateLimited) and limited.reset_at == NOW + 20
    assert limited.wait(now=NOW) == 20
    assert classify(429, b"", {"X-RateLimit-Reset": "garbage"}).reset_at is None  # type: ignore[attr-defined]
