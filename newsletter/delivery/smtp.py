"""The SMTP transport: each recipient's message through any SMTP server (Brevo, SES, ...).

It takes the same Mail Send bodies as SendGrid and the outbox and sends every
personalization as its own message, built like the outbox's .eml. Each worker
thread keeps one connection (STARTTLS or TLS, the certificate checked), used
for ``messages_per_connection`` messages before reconnecting; a token bucket
shared by the threads keeps to ``per_second``.

The server answers each message, so the transport tells a :class:`.Journal`
what happened to each. It sends in chunks of :data:`CHUNK`: the
journal records a chunk ``sending`` before its first final dot leaves, and the
chunk's outcomes with the next chunk's ``sending`` (two small writes per chunk,
not per message). What the answers mean:

- 250 to the final dot: accepted.
- The connection breaks after the final dot, before the answer: ambiguous
  (maybe delivered); the rest of the body goes on over a new connection.
- 5xx to RCPT TO: that recipient bounced; the rest goes on.
- 4xx anywhere, or a connection lost before the final dot: :class:`Retryable`
  (421 also drops the connection); the runner tries again later, skipping the
  messages already accepted.
- 535 (or another refusal of the login or the sender): :class:`AuthProblem`,
  which stops the send.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import smtplib
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

from ..config import Config
from ..config_tables import Smtp
from ..errors import NewsletterError
from . import _json
from .personal import DeliveryOutcome, Journal, personal_message_bytes
from .problems import AuthProblem, DeliveryProblem, Rejected, Retryable

# Messages per chunk: recorded ``sending`` together, their outcomes written together
# (by the journal, delivery.messages).
CHUNK = 25

PASSWORD_ENV = "NEWSLETTER_SMTP_PASSWORD"
_FIX_LOGIN = (f"Check [smtp] username in newsletter.toml and the password in {PASSWORD_ENV} "
              "(many services want an app password or an SMTP key, not the account's "
              "password).")
_DISCONNECTED = (smtplib.SMTPServerDisconnected, OSError)


def password_from_env(settings: Smtp) -> str | None:
    """The SMTP password from NEWSLETTER_SMTP_PASSWORD (None if no username is set).

    Raises NewsletterError when [smtp] host is missing, or a username is set without
    the password.
    """
    if not settings.host:
        raise NewsletterError(
            "The smtp transport needs a server: newsletter.toml has no [smtp] host.",
            hint='Add an [smtp] table with host, port, security and username (see '
            'docs/sending.md), or use --transport outbox.',
        )
    if not settings.username:
        return None
    password = os.environ.get(PASSWORD_ENV, "")
    if not password:
        raise NewsletterError(
            f"[smtp] username is set but {PASSWORD_ENV} is empty.",
            hint=f"Set it first: export {PASSWORD_ENV}='...' (it is never written to a "
            "file or shown).",
        )
    return password


class TokenBucket:
    """At most ``rate`` takes per second over time, shared by every thread (0: no limit)."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def take(self, stop: threading.Event | None = None) -> None:
        """Wait for a token (returns early if ``stop`` is set)."""
        if self.rate <= 0:
            return
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                wait = (1 - self.tokens) / self.rate
            if stop is not None and stop.wait(wait):
                return
            if stop is None:
                time.sleep(wait)


def _said(code: int, text: bytes | str) -> str:
    shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(shown.split())}"[:500]


class _Connection:
    """One open SMTP session and how many messages it has carried."""

    def __init__(self, smtp: smtplib.SMTP) -> None:
        self.smtp = smtp
        self.used = 0


class SmtpTransport:
    """Sends each personalization of a Mail Send body as one message over SMTP."""

    name = "smtp"
    per_recipient = True

    def __init__(self, config: Config, password: str | None, *, seed: str = "smtp",
                 root: Path | None = None) -> None:
        self.config = config
        self.settings = config.smtp
        self._password = password
        self.seed = seed
        ca_file = self.settings.ca_file
        if ca_file and root is not None and not Path(ca_file).is_absolute():
            ca_file = str(root / ca_file)
        self.ca_file = ca_file
        self.bucket = TokenBucket(self.settings.per_second)
        self._local = threading.local()
        self._open: list[_Connection] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show the password
        s = self.settings
        return (f"SmtpTransport(host={s.host!r}, port={s.port}, security={s.security!r}, "
                f"username={s.username!r})")

    # -- connections --

    def _context(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=self.ca_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise AuthProblem(f"[smtp] ca_file {self.ca_file!r} could not be read ({exc}); "
                              "fix the path or leave it out.") from None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        where = f"{s.host}:{s.port}"
        smtp: smtplib.SMTP | None = None
        try:
            if s.security == "tls":
                smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout,
                                        context=self._context())
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            # Without this, Nagle's algorithm holds the end of each message until the
            # server's delayed ACK (40 ms on Linux): a quarter of the speed on 127.0.0.1.
            smtp.sock.setsockopt(  # type: ignore[union-attr]
                socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp.ehlo()
            if s.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise AuthProblem(f"The SMTP server {where} does not offer STARTTLS. Use "
                                      '[smtp] security = "tls" (port 465) if it speaks TLS.')
                smtp.starttls(context=self._context())
                smtp.ehlo()
            if s.username:
                smtp.login(s.username, self._password or "")
            return smtp
        except smtplib.SMTPAuthenticationError as exc:
            _quietly_close(smtp)
            raise AuthProblem(f"The SMTP server {where} refused the login "
                              f"({_said(exc.smtp_code, exc.smtp_error)}). {_FIX_LOGIN}") from None
        except ssl.SSLCertVerificationError as exc:
            _quietly_close(smtp)
            raise AuthProblem(f"The certificate of {where} could not be verified "
                              f"({exc.verify_message}). Check [smtp] host (the name on the "
                              "certificate) or ca_file.") from None
        except smtplib.SMTPNotSupportedError:
            _quietly_close(smtp)
            raise AuthProblem(f"The SMTP server {where} offers no login (AUTH); leave out "
                              "[smtp] username, or check host and port.") from None
        except smtplib.SMTPResponseException as exc:
            _quietly_close(smtp)
            if 500 <= exc.smtp_code < 600:
                raise AuthProblem(f"The SMTP server {where} refused the session "
                                  f"({_said(exc.smtp_code, exc.smtp_error)}).") from None
            raise Retryable(f"{where} answered {_said(exc.smtp_code, exc.smtp_error)}",
                            exc.smtp_code) from None
        except (smtplib.SMTPException, OSError) as exc:
            _quietly_close(smtp)
            raise Retryable(f"could not talk to the SMTP server {where}: "
                            f"{type(exc).__name__}: {exc}") from None

    def _connection(self) -> _Connection:
        current: _Connection | None = getattr(self._local, "connection", None)
        if current is not None and current.used >= self.settings.messages_per_connection:
            self._drop(quit_politely=True)
            current = None
        if current is None:
            current = _Connection(self._connect())
            self._local.connection = current
            with self._lock:
                self._open.append(current)
        return current

    def _drop(self, quit_politely: bool = False) -> None:
        current: _Connection | None = getattr(self._local, "connection", None)
        self._local.connection = None
        if current is None:
            return
        with self._lock:
            if current in self._open:
                self._open.remove(current)
        _quietly_close(current.smtp, quit_politely)

    # -- sending --

    def send(self, body: dict[str, Any] | None, payload: bytes | None = None,
             journal: Journal | None = None, stop: threading.Event | None = None,
             ) -> DeliveryOutcome:
        """Send each personalization; tell ``journal`` each message's fate, chunk by chunk.

        Without a journal (test sends, one-off messages) a bounce raises Rejected.
        """
        if body is None:
            body = _json.loads(payload or b"{}")
        outcome = DeliveryOutcome()
        now = dt.datetime.now(dt.UTC)
        sender = self.config.sender.from_email
        # A chunk is at most about a second's worth of messages under a rate limit.
        size = max(1, min(CHUNK, int(self.settings.per_second) or CHUNK))
        chunk: list[tuple[int, str, bytes]] = []
        try:
            for index, (email, data) in enumerate(
                    personal_message_bytes(self.config, body, self.seed, now)):
                if journal is not None and journal.skip(index):
                    outcome.skipped += 1
                    continue
                chunk.append((index, email, data))
                if len(chunk) == size:
                    self._chunk(chunk, sender, journal, outcome, stop)
                    chunk = []
            if chunk:
                self._chunk(chunk, sender, journal, outcome, stop)
        finally:
            if journal is not None:
                journal.flush()
        if journal is None and outcome.bounced:
            raise Rejected("The SMTP server refused "
                           + "; ".join(f"{e} ({text})" for e, text in outcome.bounced),
                           550, [])
        if journal is None and outcome.ambiguous:
            raise DeliveryProblem("No answer after sending to "
                                  + ", ".join(e for e, _ in outcome.ambiguous))
        return outcome

    def _chunk(self, chunk: list[tuple[int, str, bytes]], sender: str,
               journal: Journal | None, outcome: DeliveryOutcome,
               stop: threading.Event | None) -> None:
        """Send a chunk of messages, recorded ``sending`` together first."""
        if journal is not None:
            journal.sending([index for index, _email, _data in chunk])
        for position, (index, email, data) in enumerate(chunk):
            self.bucket.take(stop)
            try:
                self._one(index, sender, email, data, journal, outcome)
            except (DeliveryProblem, smtplib.SMTPException, OSError):
                # _one raises only for a message that did not leave (a refusal, or the
                # connection lost before the final dot); the rest of the chunk never went.
                self._drop()
                if journal is not None:
                    for later, _email, _data in chunk[position:]:
                        journal.unsent(later)
                raise
            except BaseException:
                # Mid-message the session cannot be reused (nor politely ended); this
                # message may have left, so it stays ``sending``: ambiguous.
                self._drop()
                if journal is not None:
                    for later, _email, _data in chunk[position + 1:]:
                        journal.unsent(later)
                raise

    def _one(self, index: int, sender: str, email: str, data: bytes,
             journal: Journal | None, outcome: DeliveryOutcome) -> None:
        connection = self._connection()
        smtp = connection.smtp
        connection.used += 1
        try:
            code, said = _command(smtp, "mail", "FROM", sender)
            if code != 250:
                self._refused(code, said, "the sender (MAIL FROM)")
            code, said = _command(smtp, "rcpt", "TO", email)
            if 500 <= code < 600:
                detail = _said(code, said)
                outcome.bounced.append((email, detail))
                if journal is not None:
                    journal.bounced(index, f"{self.settings.host} refused {email}: {detail}")
                smtp.rset()
                return
            if code not in (250, 251):
                self._refused(code, said, f"the recipient {email}")
            code, said = smtp.docmd("DATA")
            if code != 354:
                self._refused(code, said, "the message (DATA)")
            smtp.sock.sendall(_dot_stuffed(data) + b".\r\n")  # type: ignore[union-attr]
        except _DISCONNECTED as exc:
            self._drop()
            raise Retryable(f"the connection to {self.settings.host} broke before the message "
                            f"to {email} was complete ({type(exc).__name__})") from None
        try:
            code, said = smtp.getreply()
        except _DISCONNECTED as exc:
            self._drop()
            detail = (f"the connection to {self.settings.host} broke after the message was "
                      f"sent, before the server answered ({type(exc).__name__})")
            outcome.ambiguous.append((email, detail))
            if journal is not None:
                journal.ambiguous(index, detail)
            return
        if code == 250:
            outcome.accepted += 1
            if journal is not None:
                journal.accepted(index)
            return
        self._refused(code, said, f"the message to {email}")

    def _refused(self, code: int, said: bytes, what: str) -> None:
        """Raise the problem a refusal stands for (after resetting or dropping the session)."""
        detail = _said(code, said)
        host = self.settings.host
        if code == 421 or code < 400:
            self._drop()
        else:
            try:
                self._local.connection.smtp.rset()
            except (smtplib.SMTPException, OSError, AttributeError):
                self._drop()
        if code in (530, 535, 534, 538):
            raise AuthProblem(f"{host} refused to send ({detail}). {_FIX_LOGIN}", code)
        if 500 <= code < 600 and "MAIL FROM" in what:
            raise AuthProblem(f"{host} refused {what} ({detail}). The From address in "
                              "[sender] from_email must be one the service lets you send "
                              "from (a verified sender or domain).", code)
        if 500 <= code < 600:
            raise Rejected(f"{host} refused {what} ({detail})", code, [])
        raise Retryable(f"{host} answered {detail} to {what}; trying again later", code)

    def create_batch_id(self) -> str:
        raise NewsletterError(
            "Scheduling (--at) needs the sendgrid transport; SMTP has no scheduling service.",
            hint="Leave out --at and run the command at the time you want, or use "
            "--transport sendgrid.",
        )

    def cancel_scheduled(self, batch_id: str) -> None:
        self.create_batch_id()

    def close(self) -> None:
        with self._lock:
            connections, self._open = self._open, []
        for connection in connections:
            _quietly_close(connection.smtp, True)


_PLAIN = re.compile(r"[^<>()\[\]\\,;:\s\"]+@[^<>()\[\]\\,;:\s\"@]+")


def _command(smtp: smtplib.SMTP, verb: str, field: str, address: str) -> tuple[int, bytes]:
    """MAIL FROM or RCPT TO as smtplib's mail() and rcpt() send them, without their
    address parsing (a fifth of the sender's time) for a plain address."""
    if not _PLAIN.fullmatch(address):
        return smtp.mail(address) if verb == "mail" else smtp.rcpt(address)
    return smtp.docmd(verb, f"{field}:<{address}>")


def _dot_stuffed(data: bytes) -> bytes:
    """The message as DATA carries it: a line starting with "." gets another (RFC 5321
    4.5.2), and it ends with CRLF. (Our messages' line ends are all CRLF.)"""
    stuffed = data.replace(b"\n.", b"\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed


def _quietly_close(smtp: smtplib.SMTP | None, quit_politely: bool = False) -> None:
    if smtp is None:
        return
    try:
        if smtp.sock is not None:
            smtp.sock.settimeout(5)  # a server that does not answer QUIT must not hold us
        if quit_politely:
            smtp.quit()
    except (TimeoutError, smtplib.SMTPException, OSError):
        pass
    with contextlib.suppress(OSError):
        smtp.close()
