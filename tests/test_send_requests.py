"""Mail Send bodies: tokens, substitutions, headers, categories (no network)."""

from __future__ import annotations

import secrets

import pytest

from newsletter.delivery.requests import (
    MAX_PERSONALIZATIONS,
    UnsubscribeSigner,
    category,
)
from newsletter.personalization import TEXT_TOKENS, personalize, substitutions
from newsletter.tokens import unsubscribe_token


@pytest.mark.parametrize("secret", [b"s" * 16, b"k" * 64, b"long" * 30, secrets.token_bytes(33)])
@pytest.mark.parametrize("slug", ["weekly", "a-b_c", 'quote"d', "münchen"])
def test_fast_signer_makes_the_same_tokens_as_tokens_module(secret, slug):
    signer = UnsubscribeSigner(secret, slug)
    for subscriber_id in (1, 7, 999, 123_456_789, 2**40):
        assert signer.token(subscriber_id, "Ann@Example.org") == unsubscribe_token(
            secret, subscriber_id, slug, "ann@example.org")


def test_substitutions_match_the_renderers_and_escape_html(builder):
    person = builder.personalizations([(5, "bob@example.org", " <B>Bob</B> & Co ")])[0]
    url = person["substitutions"][TEXT_TOKENS.unsubscribe_url]
    expected = substitutions("<B>Bob</B> & Co", url, "https://news.example.org/issues/2021-02-01/")
    assert person["substitutions"] == expected
    assert person["to"] == [{"email": "bob@example.org", "name": "<B>Bob</B> & Co"}]
    html = personalize(builder.common["content"][1]["value"], person["substitutions"])
    assert "Hello &lt;B&gt;Bob&lt;/B&gt;," in html and "<B>" not in html


def test_nameless_recipients_are_greeted_and_have_no_display_name(builder):
    person = builder.personalizations([(5, "x@example.org", "")])[0]
    assert person["to"] == [{"email": "x@example.org"}]
    assert person["substitutions"][TEXT_TOKENS.name] == "there"


def test_body_carries_batch_number_and_refuses_more_than_1000(builder):
    body = builder.body([(1, "a@example.org", "A")], batch_number=12)
    assert body["custom_args"] == {"nl_list": "weekly", "nl_issue": "2021-02-01",
                                   "nl_campaign": "7", "nl_batch": "12"}
    too_many = [(i, f"p{i}@example.org", "") for i in range(MAX_PERSONALIZATIONS + 1)]
    with pytest.raises(ValueError):
        builder.body(too_many)


def test_categories_are_safe_and_short():
    assert category("East Turkistan Weekly Brief") == "east-turkistan-weekly-brief"
    assert len(category("x" * 400)) == 255
    assert category("!!!") == "newsletter"


def test_international_domains_are_sent_in_their_ascii_form(builder):
    person = builder.personalizations([(5, "anna@münchen.de", "Anna")])[0]
    assert person["to"] == [{"email": "anna@xn--mnchen-3ya.de", "name": "Anna"}]


def test_bundled_sendgrid_spec_copies_match_the_shared_ones():
    from tests.plugins.sendgrid_spec import BUNDLED_SPEC_DIR, SHARED_SPEC_DIR

    # tsg_categories_stats_v3.json is an excerpt, checked in test_report_sendgrid_stats.py.
    bundled = sorted(p.name for p in BUNDLED_SPEC_DIR.glob("*.json")
                     if p.name != "tsg_categories_stats_v3.json")
    assert bundled == ["tsg_mail_v3.json", "tsg_scheduled_sends_v3.json",
                       "tsg_suppressions_v3.json"]
    if not SHARED_SPEC_DIR.is_dir():
        pytest.skip(f"{SHARED_SPEC_DIR} is missing: nothing to compare the bundled copies with")
    for name in bundled:
        assert (BUNDLED_SPEC_DIR / name).read_bytes() == (SHARED_SPEC_DIR / name).read_bytes()
