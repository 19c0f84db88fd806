"""Studio accounts: who may log in to a hosted studio, with which role.

Passwords are kept only as argon2id hashes (argon2-cffi); :func:`verify_login`
rehashes a stored hash whose parameters are out of date. A role is one of
:data:`ROLES`; what each may do is :data:`ROLE_PERMISSIONS`.
"""

from __future__ import annotations

import contextlib
import functools
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..emails import InvalidEmail, normalise_email, stored_email
from ..errors import NewsletterError
from .models import Base, UTCDateTime, email_key, utcnow

ROLES = ("editor", "sender", "admin")
# editor: compose and send tests; sender: also send to lists; admin: also users, subscribers.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "editor": frozenset({"edit", "test"}),
    "sender": frozenset({"edit", "test", "send"}),
    "admin": frozenset({"edit", "test", "send", "admin"}),
}
MIN_PASSWORD = 12

_hasher = PasswordHasher()
# Checked when the address is unknown, so that a wrong address takes as long as a wrong password.


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against when the address is unknown (same time as a real login).

    Made on first use, not at import: hashing costs about 0.1-0.6 s, which every command
    that opens the store would otherwise pay.
    """
    return _hasher.hash("not a real password, only for timing")


class StudioUser(Base):
    """One person who may log in to the hosted studio."""

    __tablename__ = "studio_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(10))
    password_hash: Mapped[str] = mapped_column(String(200))
    # Raised when the password or role changes or the user is removed: old sessions end.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


def _address(email: str) -> str:
    try:
        return normalise_email(email)
    except InvalidEmail as exc:
        raise NewsletterError(f"{email!r} is not a valid email address: {exc}") from None


def check_role(role: str) -> str:
    """``role`` if it is one of ROLES; else a NewsletterError naming them."""
    if role not in ROLES:
        raise NewsletterError(f"There is no role {role!r}; the roles are " + ", ".join(ROLES)
                              + ".")
    return role


def check_password(password: str) -> str:
    """``password`` if long enough; else a NewsletterError saying how long."""
    if len(password) < MIN_PASSWORD:
        raise NewsletterError(f"The password is too short: use at least {MIN_PASSWORD} "
                              "characters (a few words in a row are easy to remember).")
    return password


def find_user(session: Session, email: str) -> StudioUser | None:
    """The account for ``email``, or None (any spelling of the same address).

    Looked up in its stored form (:func:`newsletter.emails.stored_email`, as subscribers
    are), so an account an older version stored with non-ASCII letters before the @ can
    still log in and be changed or removed; :func:`add_user` still refuses a new one.
    """
    try:
        key = email_key(stored_email(email))
    except InvalidEmail:
        return None
    return session.scalars(select(StudioUser).where(StudioUser.email_key == key)).first()


def get_user(session: Session, email: str) -> StudioUser:
    """The account for ``email``; a NewsletterError naming the way to list them if none."""
    user = find_user(session, email)
    if user is None:
        raise NewsletterError(f"There is no studio user {email}.",
                              hint="See them with `newsletter users list`.")
    return user


def add_user(session: Session, email: str, password: str, role: str) -> StudioUser:
    """Create the account ``email`` with ``role``; refuses an address already there."""
    address = _address(email)
    check_role(role)
    check_password(password)
    if find_user(session, address) is not None:
        raise NewsletterError(f"{address} is already a studio user.",
                              hint=f"Change the role with `newsletter users set-role {address} "
                              "ROLE`, or remove the user first.")
    user = StudioUser(email=address, email_key=email_key(address), role=role,
                      password_hash=_hasher.hash(password), session_epoch=0)
    session.add(user)
    session.flush()
    return user


def set_role(session: Session, email: str, role: str) -> StudioUser:
    """Give ``email`` the role ``role``; their open sessions end."""
    user = get_user(session, email)
    user.role = check_role(role)
    user.session_epoch += 1
    return user


def set_password(session: Session, email: str, password: str) -> StudioUser:
    """Replace ``email``'s password; their open sessions end."""
    user = get_user(session, email)
    user.password_hash = _hasher.hash(check_password(password))
    user.session_epoch += 1
    return user


def remove_user(session: Session, email: str) -> str:
    """Delete the account ``email``; the address removed."""
    user = get_user(session, email)
    session.delete(user)
    return user.email


def list_users(session: Session) -> list[StudioUser]:
    """Every account, by address."""
    return list(session.scalars(select(StudioUser).order_by(StudioUser.email_key)))


def verify_login(session: Session, email: str, password: str) -> StudioUser | None:
    """The account if ``password`` is right for ``email``; else None (same time either way).

    A hash made with older parameters is replaced; the caller commits.
    """
    user = find_user(session, email)
    if user is None:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_dummy_hash(), password)
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = utcnow()
    return user
