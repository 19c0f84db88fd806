"""Opening the store costs no password hashing: every command imports newsletter.store."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import argon2
calls = []
original = argon2.PasswordHasher.hash
def counting(self, *args, **kwargs):
    calls.append(1)
    return original(self, *args, **kwargs)
argon2.PasswordHasher.hash = counting
import newsletter.store, newsletter.store.users as users
print(len(calls))
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from newsletter.store.models import Base
engine = create_engine("sqlite://")
Base.metadata.create_all(engine)
with Session(engine) as session:
    users.verify_login(session, "nobody@example.org", "a wrong password")
    users.verify_login(session, "nobody@example.org", "a wrong password")
print(len(calls))
"""


def test_the_timing_hash_is_made_on_first_login_not_at_import() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["0", "1"]  # none at import; one, kept, for unknown addresses
