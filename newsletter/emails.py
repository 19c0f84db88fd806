"""Checking and normalising email addresses (syntax only, never DNS): the one check.

:func:`normalise_email` gives exactly what ``email_validator.validate_email(...,
check_deliverability=False).normalized`` gives, but plain ASCII addresses take a
fast path that is about 20 times quicker; everything unusual goes to
email-validator itself. tests/test_emails.py checks the two agree.
"""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

# Dot-atom local part (RFC 5322 atext) @ hostname labels, the last ending in a letter.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
# Labels of at most 63 characters; the last one (the TLD) ends with a letter.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_SIMPLE = re.compile(
    rf"({_ATEXT}+(?:\.{_ATEXT}+)*)@((?:{_LABEL}\.)+)((?:[A-Za-z0-9][A-Za-z0-9-]{{0,61}})?[A-Za-z])"
)
# email-validator's reserved names (SPECIAL_USE_DOMAIN_NAMES): left to it.
_SPECIAL_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})
_CASE_INSENSITIVE = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)


class InvalidEmail(ValueError):
    """The text is not a usable email address; ``str(exc)`` says why, in plain words."""


def _fast(address: str) -> str | None:
    """The normalised address if it is plain ASCII and clearly valid, else None."""
    if len(address) > 254 or not address.isascii():
        return None
    match = _SIMPLE.fullmatch(address)
    if match is None:
        return None
    local, labels, tld = match.groups()
    tld = tld.lower()
    if len(local) > 64 or len(labels) + len(tld) > 253 or "--" in labels or "--" in tld:
        return None
    if tld in _SPECIAL_TLDS or local.lower() in _CASE_INSENSITIVE:
        return None
    return f"{local}@{labels.lower()}{tld}"


def normalise_email(text: str) -> str:
    """Check ``text`` is an email address and return its normal form.

    Surrounding whitespace is trimmed, the domain is lower-cased and IDN domains
    are given in Unicode (``x@xn--mnchen-3ya.de`` -> ``x@münchen.de``); the part
    before the @ keeps its case. Raises :class:`InvalidEmail` with a readable reason.
    """
    return _normal(text, stored=False)


def stored_email(text: str) -> str:
    """The form under which ``text`` is stored, to find a stored subscriber or studio user.

    :func:`normalise_email`'s, except for an address with non-ASCII letters before the
    @ (``josé@example.org``): refused for anyone new, but a database made by an older
    version may hold one, so it is given as those versions stored it (email-validator's
    normal form, or, if today's email-validator refuses it, as typed). Never use it to
    store a new address. Raises :class:`InvalidEmail` for anything else that is not one.
    """
    return _normal(text, stored=True)


def _normal(text: str, *, stored: bool) -> str:
    address = text.strip()
    fast = _fast(address)
    if fast is not None:
        return fast
    if not address:
        raise InvalidEmail("the email address is empty")
    try:
        result = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        if stored and non_ascii_local_part(address):
            return address  # an older email-validator may have let it through
        raise InvalidEmail(str(exc)) from None
    if not stored and non_ascii_local_part(result.normalized):
        # Valid (RFC 6531), but deliverable only where every server on the way speaks
        # SMTPUTF8: SendGrid answers "501 Recipient syntax error", and Python's email
        # package cannot write it into a To header. Refused here, so no list holds one.
        raise InvalidEmail(
            f"the part before the @ ({result.local_part}) has letters outside plain ASCII; "
            "mail services (SendGrid included) cannot deliver to such an address, so ask "
            "the person for another one")
    return result.normalized


def non_ascii_local_part(address: str) -> bool:
    """True if the part before the @ has letters outside plain ASCII (``josé@example.org``).

    :func:`normalise_email` refuses such addresses; a database made by an older
    version may still hold some, and a send leaves them out (newsletter.delivery.refusals).
    """
    # The domain never holds an @, so the last one ends the local part (even a quoted one).
    return not address.isascii() and not address.rpartition("@")[0].isascii()


def ascii_email(email: str) -> str:
    """The address with an IDNA (xn--) domain, for transports that need pure ASCII.

    Addresses whose part before the @ is non-ASCII are returned unchanged
    (they need SMTPUTF8 anyway).
    """
    if email.isascii():
        return email
    result = validate_email(email, check_deliverability=False)
    return result.ascii_email or result.normalized
