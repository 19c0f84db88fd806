"""The studio: compose, preview, check and send issues from the browser.

One module per job: ``app`` wires routes, ``editor`` and ``issues`` the pages,
``forms`` turns form data into issue edits, ``preview``, ``sends``, ``images``,
``links`` (Add from link) and ``security`` (users, Host header, CSRF); ``state`` what
every page shares; hosted mode: ``accounts`` (login, sessions), ``reviews`` (review
links), ``subscribers`` and ``admin`` (audit log, users).
"""

from .app import create_app, hosted_app

__all__ = ["create_app", "hosted_app"]
