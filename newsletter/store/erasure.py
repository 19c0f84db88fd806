"""Erasure on request ("forget me", GDPR article 17): delete a person, remember only a hash.

:func:`forget` deletes the subscriber's row, name, attributes, memberships, history and
per-reader opens and clicks, and records one :class:`Erasure`: an HMAC-SHA256 of the
address keyed with the project secret, and the time. Nothing else is kept, and the hash
cannot be turned back into the address, nor checked against a guessed address without
the secret (a copy of the database alone is not enough).

The consent rule (:mod:`.consent`) asks :func:`is_erased` before anyone new is stored,
so no import, ``add`` or sign-up can ever add an erased address back.

The key: the secret registered for the database's engine with :func:`use_secret` (the
CLI and the web service register the project's secret; library users call it too).
A database without erasures never needs it. One with erasures but no secret at hand
refuses to add anyone new rather than risk adding an erased person back.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, Integer, String, delete, exists, func, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..emails import InvalidEmail, stored_email
from ..errors import NewsletterError
from .engagement import forget_reader_events
from .lookup import find_subscriber
from .models import (
    Base,
    HistoryEntry,
    Membership,
    Subscriber,
    UTCDateTime,
    email_key,
    utcnow,
)

SecretSource = Callable[[], bytes]
_PURPOSE = b"erasure\0"
_SECRETS: WeakKeyDictionary[Engine, SecretSource] = WeakKeyDictionary()


class Erasure(Base):
    """One address erased on request: its keyed hash and when. Migration "0010"."""

    __tablename__ = "erasures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


def use_secret(engine: Engine, secret: bytes | SecretSource) -> None:
    """Use ``secret`` (or call it, once needed) as the erasure key of ``engine``'s database."""
    _SECRETS[engine] = (lambda: secret) if isinstance(secret, bytes) else secret


def _engine(bind: Session | Connection) -> Engine:
    found = bind.get_bind() if isinstance(bind, Session) else bind.engine
    return found.engine if isinstance(found, Connection) else found


def _secret(bind: Session | Connection) -> bytes:
    source = _SECRETS.get(_engine(bind))
    if source is not None:
        return source()
    raise NewsletterError(
        "This database holds addresses erased on request, and checking them needs the "
        "project's secret (the one that signs unsubscribe links), which was not given; "
        "nobody new was added.",
        hint="Set NEWSLETTER_SECRET to the secret your emails are sent with and run the "
        "command again (in code: newsletter.store.use_secret(engine, secret)).",
    )


def digest(secret: bytes, email: str) -> str:
    """The keyed hash kept of an erased address (letter case does not matter)."""
    return hmac.new(secret, _PURPOSE + email_key(email).encode(), hashlib.sha256).hexdigest()


def hold_erasures(bind: Session | Connection, *, to_erase: bool = False) -> None:
    """PostgreSQL: until this transaction ends nobody can erase an address (forget()
    waits), so what it reads of the erasures stays true while it adds people.

    Taken by every consent check (erased_checker) and by each chunk of an import;
    forget() takes the conflicting lock (``to_erase``) before it looks the person up.
    Without it an address erased while an import or sign-up was adding it came back.
    """
    if _engine(bind).dialect.name == "postgresql":
        mode = "SHARE ROW EXCLUSIVE" if to_erase else "SHARE"
        bind.execute(text(f"LOCK TABLE erasures IN {mode} MODE"))


def count_erasures(bind: Session | Connection) -> int:
    """How many addresses were ever erased (an import compares it chunk by chunk)."""
    return int(bind.scalar(select(func.count()).select_from(Erasure)) or 0)


def any_erasures(bind: Session | Connection) -> bool:
    """True if any address was ever erased (then adding someone new needs a check)."""
    return bool(bind.scalar(select(exists().where(Erasure.id.is_not(None)))))


def erased_checker(bind: Session | Connection) -> Callable[[str], bool] | None:
    """A test "was this normalised address erased?", or None if nothing ever was.

    For bulk work (imports): the hashes are read once.
    """
    hold_erasures(bind)
    if not any_erasures(bind):
        return None
    secret = _secret(bind)
    digests = set(bind.scalars(select(Erasure.digest)))
    return lambda email: digest(secret, email) in digests


def is_erased(bind: Session | Connection, email: str) -> bool:
    """True if the (normalised) address ``email`` was erased on request."""
    check = erased_checker(bind)
    return check is not None and check(email)


@dataclass(frozen=True)
class Forgotten:
    """What :func:`forget` deleted (counts only: the rest is gone)."""

    known: bool  # False: the address was not stored; it is blocked all the same
    lists: int
    history: int
    reader_events: int


def forget(session: Session, who: str | Subscriber, *,
           secret: bytes | None = None) -> Forgotten:
    """Erase a person (their address, or their :class:`Subscriber`) for good (the caller
    commits); see the module's description.

    The address is looked up as every per-person action looks it up (:mod:`.lookup`), so
    a person an older version stored with non-ASCII letters before the @ is erased too.
    Also for an address never stored: it is recorded, so nobody can add it later.
    Erasing twice is harmless. Raises NewsletterError if ``who`` is not an address.
    """
    # Before the look-up: an import chunk or sign-up adding this address right now holds
    # the erasures, so we wait for it and then find the person.
    hold_erasures(session, to_erase=True)
    found = find_subscriber(session, who)
    if found is not None:
        address = found.email
    else:
        assert isinstance(who, str)  # a Subscriber is always found: it is itself
        try:
            address = stored_email(who)
        except InvalidEmail as exc:
            raise NewsletterError(
                f"{who!r} is not a valid email address: {exc}",
                hint="Copy the address exactly as it is stored: `newsletter subscribers "
                "show EMAIL` finds it in any letter case.",
            ) from None
    key = secret if secret is not None else _secret(session)
    lists = entries = events = 0
    if found is not None:
        events = forget_reader_events(session, found.id)
        entries = _count(session.execute(
            delete(HistoryEntry).where(HistoryEntry.subscriber_id == found.id)))
        lists = _count(session.execute(
            delete(Membership).where(Membership.subscriber_id == found.id)))
        session.expunge(found)
        session.execute(delete(Subscriber).where(Subscriber.id == found.id))
    value = digest(key, address)
    if session.scalar(select(Erasure.id).where(Erasure.digest == value)) is None:
        session.add(Erasure(digest=value, erased_at=utcnow()))
    session.flush()
    return Forgotten(found is not None, lists, entries, events)


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
