"""The fast personal messages (delivery/fastmime.py) are byte for byte the email
package's (mime.build_message + personal.message_bytes)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import random
from typing import Any

import pytest

from newsletter.delivery import fastmime
from newsletter.delivery.personal import (
    message_bytes,
    personal_message_bytes,
    personal_messages,
)
from newsletter.delivery.requests import RequestBuilder
from newsletter.personalization import TEXT_TOKENS

NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
PEOPLE = [
    (1, "reader1@example.org", "Reader 1"),
    (2, "ann@example.org", ""),
    (3, "zoe@exämple.org", "Zoë Ünïcode"),  # the builder sends the xn-- form of the domain
    (4, "obrien@example.org", "Seán O'Brien, Jr."),
    (5, "amp@example.org", ' <B>Bob</B> & "Co" '),
    (6, "long.address.with.many.parts@subdomain.example.org",
     "Maximiliane Theodora Wilhelmina von Hohenzollern-Sigmaringen"),
    (7, "emoji@example.org", "Ayşe 🌻 Yılmaz"),
    (8, "dot.start@example.org", ".Dot"),
    (9, "tab@example.org", "Tab\tName"),
    (10, "user+tag@example.org", "Μαρία Παπαδοπούλου"),
    (11, "cjk@example.org", "山田 太郎"),
    (12, "trailing@example.org", "Trailing   "),
]


def _reference(builder: RequestBuilder, body: dict[str, Any]) -> list[tuple[str, bytes]]:
    return [(e, message_bytes(m))
            for e, m in personal_messages(builder.config, body, "weekly", NOW)]


def test_fast_messages_are_byte_for_byte_the_email_packages(builder):
    body = builder.body(PEOPLE, 3)
    template = fastmime.MessageTemplate(builder.config, body, "weekly", NOW)
    for person, (address, expected) in zip(body["personalizations"],
                                           _reference(builder, body), strict=True):
        assert template.message(person) == expected, address
    assert list(personal_message_bytes(builder.config, body, "weekly", NOW)) == _reference(
        builder, body)


def test_random_names_and_addresses_match_too(builder):
    rng = random.Random(18)
    alphabet = "abcXYZ019 .,'\"<>&()-_äöüßéñçøΩжд中文🙂\t"
    people = []
    for i in range(150):
        name = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 70)))
        local = ".".join("".join(rng.choice("abcxyz019+-_") for _ in range(rng.randint(1, 9)))
                         for _ in range(rng.randint(1, 4)))
        people.append((i + 1, f"{local}@example.org", name))
    body = builder.body(people, 1)
    template = fastmime.MessageTemplate(builder.config, body, "weekly", NOW)
    assert [(person["to"][0]["email"], template.message(person))  # all the fast way
            for person in body["personalizations"]] == _reference(builder, body)


def test_a_line_break_in_a_value_or_a_personal_subject_takes_the_slow_way(builder):
    body = builder.body(PEOPLE[:3], 1)
    body["personalizations"][1]["substitutions"][TEXT_TOKENS.name] = "Two\nLines"
    template = fastmime.MessageTemplate(builder.config, body, "weekly", NOW)
    with pytest.raises(fastmime.NoTemplate):
        template.message(body["personalizations"][1])
    assert list(personal_message_bytes(builder.config, body, "weekly", NOW)) == _reference(
        builder, body)
    body = builder.body(PEOPLE[:3], 1)
    body["subject"] = f"For {TEXT_TOKENS.name}"
    with pytest.raises(fastmime.NoTemplate):
        fastmime.MessageTemplate(builder.config, body, "weekly", NOW)
    assert list(personal_message_bytes(builder.config, body, "weekly", NOW)) == _reference(
        builder, body)


def test_the_fast_message_parses_with_its_personal_parts(builder):
    body = builder.body(PEOPLE[:3], 1)
    person = body["personalizations"][2]
    raw = fastmime.MessageTemplate(builder.config, body, "weekly", NOW).message(person)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["To"].addresses[0].display_name == "Zoë Ünïcode"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    url = person["substitutions"][TEXT_TOKENS.unsubscribe_url]
    assert url in text and url in html and url in message["List-Unsubscribe"]
    assert "Hello Zoë," in text and "[[nl:" not in text + html


def test_quoted_printable_lines_match_the_email_packages_encoder():
    from email import quoprimime

    rng = random.Random(2045)
    pieces = ["a", " ", "\t", "=", "ä", "€", "🙂", "x" * 70, ".", "\x00", "\x7f", "<a href='x'>"]
    for _ in range(3000):
        line = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 60)))
        raw = line.encode("utf-8")
        expected = quoprimime.body_encode(raw.decode("latin-1"), 78, eol="\r\n")
        assert fastmime._qp_line(raw) == expected.encode("ascii") + b"\r\n", repr(line)


def test_the_encoded_head_of_a_line_does_not_depend_on_what_follows():
    rng = random.Random(1521)
    pieces = ["a", " ", "\t", "=", "ä", "x" * 40, "<td style='a'>"]
    for _ in range(2000):
        line = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 90))).encode()
        cut = rng.randint(0, len(line))
        escaped = fastmime._qp_escape(line[:cut])
        head, start = fastmime._qp_head(escaped)
        rest = escaped[start:] + fastmime._qp_escape(line[cut:])
        assert head + fastmime._qp_wrap(rest) == fastmime._qp_line(line), repr(line)
