"""Personal messages without the email package per recipient: byte for byte what
:func:`newsletter.mime.build_message` and :func:`.personal.message_bytes` write.

Building each message with the email package costs about 6 ms (header objects,
folding, quoted-printable in pure Python), more than everything else an SMTP
send does. The parts of a message that differ between the recipients of one
Mail Send body are few: the To header, the Message-ID (and the MIME boundary,
made from it), the personal headers (List-Unsubscribe) and the lines of the
text and HTML parts that hold a substitution token. So a :class:`MessageTemplate`
builds the message once with the email package, with sentinels in those
places, and keeps the bytes between them. Each recipient's message is those
bytes with the personal pieces filled in, each encoded as the email package
encodes it:

- quoted-printable encodes every line on its own (soft breaks depend only on
  the line), so the lines without a token are encoded once, and only the lines
  with one are encoded per recipient, with the email package's own encoder;
- headers are folded by the email package's policy, except a To header that is
  a plain ``Name Surname <address>`` short enough that no folding applies.

Whatever the template cannot reproduce (a token in the subject, a personal
header that replaces a common one, a value with a line break) goes the slow way,
through the email package; ``tests/test_smtp_fastmime.py`` compares the two.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from functools import lru_cache
from typing import Any

from ..config import Config
from ..mime import FOLDED_HEADERS, FoldedHeader, build_message, message_id

# Long List-Unsubscribe URLs must stay plain text: with the default 78-character
# limit, the email package would wrap them in =?utf-8?q?...?= encoded words.
EML_POLICY = SMTP.clone(max_line_length=998)
SENTINEL_TO = "nl-sentinel-to@sentinel.invalid"
SENTINEL_HEADER = "X-Nl-Sentinel-Personal"
SENTINEL_TEXT = "nlsentineltextpartnl"
SENTINEL_HTML = "nlsentinelhtmlpartnl"
_QP_WIDTH: int = SMTP.max_line_length or 78  # build_message encodes the parts under SMTP
_CRLF = b"\r\n"
# Values with these would split a line: the email package then counts lines differently.
_LINE_BREAKS = re.compile("[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
# A To header the email package writes as it is: plain words, a plain address.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9]+(?: [A-Za-z0-9]+)*")
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+"
                            r"(?:\.[A-Za-z0-9-]+)+")
_PLAIN_WIDTH = 78


class NoTemplate(Exception):
    """The template cannot reproduce these messages; build them with the email package."""


# email.quoprimime's body map: these bytes stay as they are, the others become =XX.
_QP_SAFE = (b" !\"#$%&'()*+,-./0123456789:;<>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
            b"abcdefghijklmnopqrstuvwxyz{|}~\t")
_QP_UNSAFE = re.compile(b"[^" + re.escape(_QP_SAFE) + b"]")
_QP_QUOTED = {bytes([c]): f"={c:02X}".encode("ascii") for c in range(256)}


def _qp_quote(match: re.Match[bytes]) -> bytes:
    return _QP_QUOTED[match.group(0)]


def _qp_escape(data: bytes) -> str:
    """The bytes with every byte quoted-printable would not leave alone written =XX."""
    return _QP_UNSAFE.sub(_qp_quote, data).decode("ascii")


def _qp_head(text: str) -> tuple[bytes, int]:
    """The soft-broken lines ``email.quoprimime.body_encode(..., maxlinelen=78)`` cuts from
    the front of an escaped line, with their CRLFs, and where the rest starts. They are
    the same whatever follows ``text``: each cut looks only at the 78 characters ahead."""
    out: list[str] = []
    width = _QP_WIDTH
    start = 0
    while start + width + 1 <= len(text):
        stop = start + width - 1
        if text[stop - 2] == "=":  # never break an =XX escape
            out.append(text[start:stop - 1])
            start = stop - 2
        elif text[stop - 1] == "=":
            out.append(text[start:stop])
            start = stop - 1
        else:
            out.append(text[start:stop] + "=")
            start = stop
    return "".join(line + "\r\n" for line in out).encode("ascii"), start


def _qp_wrap(text: str) -> bytes:
    """One escaped line cut into lines of at most 78 characters with soft line breaks,
    exactly as ``email.quoprimime.body_encode(..., maxlinelen=78)`` does; with its CRLF."""
    head, start = _qp_head(text)
    if text and text[-1] in " \t":  # whitespace at the end of a line is quoted
        room = start - (len(text) - 1 - _QP_WIDTH)
        if room >= 3:
            last = text[start:-1] + _QP_QUOTED[text[-1].encode()].decode()
        elif room == 2:
            last = text[start:] + "=\r\n"
        else:
            last = text[start:-1] + "=\r\n" + _QP_QUOTED[text[-1].encode()].decode()
    else:
        last = text[start:]
    return head + last.encode("ascii") + _CRLF


def _qp_line(line: bytes) -> bytes:
    """One line (without its line break) quoted-printable encoded as the email package
    does, with its CRLF. Escaping is byte by byte, so the constant text around the
    tokens of a personal line is escaped once (:class:`_Part`)."""
    return _qp_wrap(_qp_escape(line))


# A line with tokens: its text between them (escaped) and the tokens, in order.
_Personal = list[str | bytes]


class _Part:
    """A text part as encoded bytes: runs of lines without tokens encoded once, and the
    lines with tokens, encoded per recipient."""

    def __init__(self, value: str, tokens: re.Pattern[bytes]) -> None:
        # contentmanager._encode_text: the utf-8 bytes split into lines, "\n" after each.
        self.pieces: list[bytes | _Personal] = []
        run: list[bytes] = []
        for line in value.encode("utf-8").splitlines() or [b""]:
            if not tokens.search(line):
                run.append(_qp_line(line))
                continue
            if run:
                self.pieces.append(b"".join(run))
                run = []
            split = tokens.split(line)  # text, token, text, token, ..., text
            personal: _Personal = [piece if odd % 2 else _qp_escape(piece)
                                   for odd, piece in enumerate(split)]
            # The encoded lines before the first token are the same for everyone.
            head, start = _qp_head(str(personal[0]))
            personal[0] = str(personal[0])[start:]
            self.pieces.append(head)
            self.pieces.append(personal)
        if run:
            self.pieces.append(b"".join(run))

    def encode(self, escaped: dict[bytes, str]) -> bytes:
        """The part's encoded bytes, with each token's value (already escaped) put in."""
        return b"".join(
            piece if isinstance(piece, bytes) else _qp_wrap("".join(
                escaped[item] if isinstance(item, bytes) else item for item in piece))
            for piece in self.pieces)


def message_bytes(message: EmailMessage) -> bytes:
    """The message as written to an .eml file and sent over SMTP (CRLF line ends)."""
    return message.as_bytes(policy=EML_POLICY)


@lru_cache(maxsize=64)
def _header(name: str, value: str) -> bytes:
    """One header line as the email package writes it (see :func:`message_bytes`)."""
    stored = FoldedHeader(name, value) if name in FOLDED_HEADERS else value
    return EML_POLICY.fold_binary(*SMTP.header_store_parse(name, stored))


def _to_line(name: str, email: str) -> bytes:
    if _PLAIN_ADDRESS.fullmatch(email) and (not name or _PLAIN_NAME.fullmatch(name)):
        line = f"To: {name} <{email}>" if name else f"To: {email}"
        if len(line) <= _PLAIN_WIDTH:
            return line.encode("ascii") + _CRLF
    return _header("To", str(Address(display_name=name, addr_spec=email)))


def _boundary(msg_id: str) -> bytes:
    return ("=_" + hashlib.sha256(msg_id.encode()).hexdigest()[:32]).encode("ascii")


class MessageTemplate:
    """The messages of one Mail Send body, built once and filled in per recipient."""

    def __init__(self, config: Config, body: dict[str, Any], seed: str,
                 now: dt.datetime) -> None:
        self.config, self.seed, self.stamp = config, seed, now.isoformat()
        contents = {part["type"]: part["value"] for part in body.get("content", [])}
        persons = body["personalizations"]
        keys = tuple((persons[0].get("substitutions") or {}) if persons else ())
        self.keys = keys
        subject = body.get("subject", "")
        self.common = dict(body.get("headers") or {})
        if not keys or any(key in subject for key in keys) or any(
                person.get("subject") for person in persons):
            raise NoTemplate("the subject is personal")
        tokens = re.compile(b"(" + b"|".join(re.escape(key.encode()) for key in keys) + b")")
        self.text = _Part(contents.get("text/plain", ""), tokens)
        self.html = _Part(contents.get("text/html", ""), tokens)
        sentinel_id = message_id(config, "nl-sentinel", self.stamp)
        skeleton = message_bytes(build_message(
            config, subject=subject, text=SENTINEL_TEXT, html=SENTINEL_HTML, to=SENTINEL_TO,
            date=now, msg_id=sentinel_id, headers={**self.common, SENTINEL_HEADER: "x"}))
        holes = {
            "to": f"To: {SENTINEL_TO}\r\n".encode(),
            "id": sentinel_id.encode(),
            "headers": f"{SENTINEL_HEADER}: x\r\n".encode(),
            "text": SENTINEL_TEXT.encode() + _CRLF,
            "html": SENTINEL_HTML.encode() + _CRLF,
        }
        found: list[tuple[int, int, str]] = []
        for kind, needle in holes.items():
            if skeleton.count(needle) != 1:
                raise NoTemplate(f"the {kind} sentinel is not found once")
            found.append((skeleton.index(needle), len(needle), kind))
        boundary = _boundary(sentinel_id)
        start = skeleton.find(boundary)
        while start >= 0:
            found.append((start, len(boundary), "boundary"))
            start = skeleton.find(boundary, start + 1)
        if len(found) != len(holes) + 4:  # Content-Type and three delimiters
            raise NoTemplate("the boundary is not where it should be")
        found.sort()
        self.segments: list[bytes] = []
        self.kinds: list[str] = []
        position = 0
        for at, length, kind in found:
            if at < position:
                raise NoTemplate("sentinels overlap")
            self.segments.append(skeleton[position:at])
            self.kinds.append(kind)
            position = at + length
        self.tail = skeleton[position:]

    def message(self, person: dict[str, Any]) -> bytes:
        """One recipient's complete message (CRLF line ends); NoTemplate if it cannot."""
        values = person.get("substitutions") or {}
        own = person.get("headers") or {}
        if (tuple(values) != self.keys or person.get("subject")
                or any(name in self.common for name in own)
                or any(_LINE_BREAKS.search(value) for value in values.values())):
            raise NoTemplate("this recipient's message is not like the others")
        recipient = person["to"][0]
        email = recipient["email"]
        msg_id = message_id(self.config, self.seed, email, self.stamp)
        escaped = {key.encode(): _qp_escape(value.encode("utf-8"))
                   for key, value in values.items()}
        filled = {
            "to": _to_line(recipient.get("name", ""), email),
            "id": msg_id.encode(),
            "boundary": _boundary(msg_id),
            "headers": b"".join(_header(name, value) for name, value in own.items()),
            "text": self.text.encode(escaped),
            "html": self.html.encode(escaped),
        }
        out: list[bytes] = []
        for segment, kind in zip(self.segments, self.kinds, strict=True):
            out.append(segment)
            out.append(filled[kind])
        out.append(self.tail)
        return b"".join(out)
