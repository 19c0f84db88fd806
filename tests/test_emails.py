"""normalise_email's fast path must agree exactly with email-validator."""

from __future__ import annotations

import itertools
import random

import pytest
from email_validator import EmailNotValidError, validate_email

from newsletter.emails import InvalidEmail, _fast, ascii_email, normalise_email

LOCALS = [
    "ann", "Ann.Lee", "a", "a.b.c", "first+tag", "o'brien", "x_y-z", "1234", "#!$%&'*+/=?^_`{|}~-",
    ".lead", "trail.", "dou..ble", "with space", '"quoted"', '"quo ted"', "müller", "ANN",
    "Info", "POSTMASTER", "abuse", "news", "a" * 64, "a" * 65, "a\u0301", "tab\t", "comma,x",
    "semi;x", "paren(x)", "", "user@name",
]
DOMAINS = [
    "example.org", "EXAMPLE.ORG", "Mail.Example.Co.Uk", "ex-ample.org", "-example.org",
    "example-.org", "ex--ample.org", "ab--cd.org", "xn--mnchen-3ya.de", "xn--bad.org",
    "example.c0m", "example.123", "example", "localhost", "example.test", "x.invalid",
    "x.local", "x.onion", "in-addr.arpa", "example.org.", ".example.org", "exa_mple.org",
    "a" * 63 + ".org", "a" * 64 + ".org", ".".join(["abcdefghi"] * 26) + ".org",
    "münchen.de", "MÜNCHEN.DE", "[127.0.0.1]", "192.168.0.1", "例え.jp", "example.o",
    "1.example.org", "example.org-", "e.x.a.m.p.l.e.com", "EXAMPLE.xn--p1ai",
]


def reference(address: str) -> str | None:
    """email-validator's verdict, less what we refuse on purpose: a non-ASCII local part."""
    try:
        result = validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return None
    return result.normalized if result.local_part.isascii() else None


def ours(address: str) -> str | None:
    try:
        return normalise_email(address)
    except InvalidEmail:
        return None


def samples() -> list[str]:
    grid = [f"{local}@{domain}" for local, domain in itertools.product(LOCALS, DOMAINS)]
    rng = random.Random(3)
    alphabet = "aZ09._-+@@..--'\"!#é ü"
    fuzz = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24))) for _ in range(6000)]
    plausible = [
        f"{rng.choice(LOCALS[:8])}{rng.choice(['', '.', '-', '+', '..'])}{rng.randint(0, 99)}"
        f"@{rng.choice(['', 'sub.', 'a-b.', '-x.'])}{rng.choice(DOMAINS[:4])}"
        for _ in range(3000)
    ]
    return grid + fuzz + plausible


def test_fast_path_agrees_with_email_validator() -> None:
    fast_hits = 0
    for address in samples():
        expected = reference(address.strip())
        fast = _fast(address.strip())
        if fast is not None:
            fast_hits += 1
            assert fast == expected, address
        assert ours(address) == expected, address
    assert fast_hits > 1500  # the fast path really was exercised


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Ann.Lee@Example.ORG \n", "Ann.Lee@example.org"),
        ("x@xn--mnchen-3ya.de", "x@münchen.de"),
        ("x@MÜNCHEN.de", "x@münchen.de"),
        ("Info@example.org", "info@example.org"),
    ],
)
def test_normalised_forms(text: str, expected: str) -> None:
    assert normalise_email(text) == expected


@pytest.mark.parametrize("text", ["josé@example.org", "用户@例子.广告", "Jörg.Müller@example.de"])
def test_a_non_ascii_part_before_the_at_is_refused_in_words(text: str) -> None:
    # Deliverable only over SMTPUTF8 end to end: SendGrid answers 501, and the email
    # package cannot put it in a To header (a send crashed on it).
    with pytest.raises(InvalidEmail, match="outside plain ASCII.*ask the person for another"):
        normalise_email(text)
    assert normalise_email("jose@bücher.example") == "jose@bücher.example"  # IDN domains: fine


def test_invalid_addresses_say_why() -> None:
    with pytest.raises(InvalidEmail, match="@-sign"):
        normalise_email("no-at-sign.example.org")
    with pytest.raises(InvalidEmail, match="empty"):
        normalise_email("   ")


def test_ascii_email_for_transports() -> None:
    assert ascii_email("x@münchen.de") == "x@xn--mnchen-3ya.de"
    assert ascii_email("ann@example.org") == "ann@example.org"
