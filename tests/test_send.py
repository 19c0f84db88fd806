"""Sending through the sendgrid transport to a fake SendGrid on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.delivery.models import Batch, BatchState, Campaign, CampaignStatus
from newsletter.delivery.overview import StateCount
from newsletter.delivery.planning import SendOptions, SendSettings, plan_send
from newsletter.delivery.refusals import REASON
from newsletter.delivery.schedule import parse_at
from newsletter.delivery.send import run_send
from newsletter.delivery.sendgrid_client import SendGridClient
from newsletter.delivery.status import campaigns_status, cancel_send
from newsletter.delivery.transports import SendGridTransport
from newsletter.errors import NewsletterError
from newsletter.personalization import TEXT_TOKENS
from newsletter.store import Source, open_project_database, unsubscribe
from newsletter.tokens import read_unsubscribe_token
from tests.plugins.fake_sendgrid import (
    DROP,
    HANG,
    SECRET,
    Reply,
    own_identity,
    populate,
    store_as_an_older_version_did,
)

ISSUE = Path("issues/2021-02-01.yaml")
FAST = SendSettings(batch_size=10, concurrency=2, timeout=2.0, max_retries=3,
                    backoff_base=0.01, backoff_cap=0.05, rate_limit_max_wait=5.0)


def send(project, settings: SendSettings = FAST, **options):
    """Plan and run a send through the sendgrid transport (no confirmation)."""
    options.setdefault("list_slug", "weekly")
    options.setdefault("transport", "sendgrid")
    plan = plan_send(project, SendOptions(ISSUE, **options), settings)
    return run_send(plan)


def batches(project) -> list[Batch]:
    database = open_project_database(project)
    try:
        with database.session() as session:
            return list(session.scalars(select(Batch).order_by(Batch.number)))
    finally:
        database.dispose()


def campaigns(project) -> list[Campaign]:
    database = open_project_database(project)
    try:
        with database.session() as session:
            return list(session.scalars(select(Campaign)))
    finally:
        database.dispose()


def everyone(n: int = 25) -> set[str]:
    return {f"user{i}@example.org" for i in range(n)}


def test_requests_are_valid_batched_and_carry_per_recipient_parts(send_project, fake_sendgrid):
    populate(send_project, "weekly", 2475, start=25)  # 2500 in all
    report = send(send_project, SendSettings(batch_size=1000, concurrency=2, timeout=5))
    assert report.complete and report.recipients_accepted == 2500
    assert fake_sendgrid.rejected == []
    sizes = sorted(len(item.body["personalizations"]) for item in fake_sendgrid.accepted)
    assert sizes == [500, 1000, 1000]
    assert set(fake_sendgrid.delivered().values()) == {1}
    assert set(fake_sendgrid.delivered()) == everyone(2500)
    body = fake_sendgrid.accepted[0].body
    config = send_project.config
    assert body["from"] == {"email": config.sender.from_email, "name": config.sender.from_name}
    assert body["reply_to"] == {"email": config.sender.reply_to}
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert TEXT_TOKENS.unsubscribe_url in body["content"][1]["value"]
    args = body["custom_args"]
    assert args["nl_list"] == "weekly" and args["nl_issue"] == "2021-02-01"
    assert args["nl_campaign"] == str(report.campaign_id)
    assert {item.body["custom_args"]["nl_batch"] for item in fake_sendgrid.accepted} == {
        "1", "2", "3"}
    assert body["categories"] == ["east-turkistan-weekly-brief", "issue:2021-02-01", "list:weekly"]
    person = body["personalizations"][0]
    url = person["substitutions"][TEXT_TOKENS.unsubscribe_url]
    assert url.startswith("https://news.example.org/unsubscribe/")
    subscriber_id, slug = read_unsubscribe_token(SECRET.encode(), url.rsplit("/", 1)[1])
    assert slug == "weekly" and subscriber_id > 0
    assert person["headers"] == {
        "List-Unsubscribe": f"<{url}>, <mailto:unsubscribe@example.org?subject=unsubscribe>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert person["substitutions"][TEXT_TOKENS.view_url] == "https://news.example.org/issues/2021-02-01/"
    assert person["substitutions"][TEXT_TOKENS.name].startswith("User ")
    assert "mail_settings" not in body and "send_at" not in body
    assert campaigns(send_project)[0].status == CampaignStatus.SENT


def test_unsubscribe_group_replaces_list_unsubscribe_headers(send_project, fake_sendgrid):
    toml = send_project.root / "newsletter.toml"
    toml.write_text(toml.read_text().replace(
        "[delivery]\n", "[delivery]\nsendgrid_unsubscribe_group = 4242\n"))
    from newsletter.project import Project

    send(Project(send_project.root))
    body = fake_sendgrid.accepted[0].body
    assert body["asm"] == {"group_id": 4242}
    assert all("headers" not in p for p in body["personalizations"])


def test_second_send_of_an_issue_to_a_list_refuses(send_project, fake_sendgrid):
    send(send_project)
    with pytest.raises(NewsletterError, match="already sent"):
        send(send_project)
    assert sum(fake_sendgrid.delivered().values()) == 25


def test_resume_sends_failed_and_pending_only_and_never_adds_later_signups(
    send_project, fake_sendgrid
):
    settings = SendSettings(batch_size=10, concurrency=1, max_retries=1, backoff_base=0.01)
    fake_sendgrid.script(Reply(500), Reply(500))  # batch 1 fails after its retry
    first = send(send_project, settings)
    assert not first.complete
    assert [p.number for p in first.failed] == [1]
    assert [b.state for b in batches(send_project)] == ["failed", "accepted", "accepted"]
    # Someone joins and someone in the failed batch leaves before the resume.
    populate(send_project, "weekly", 1, start=500)
    database = open_project_database(send_project)
    with database.transaction() as session:
        unsubscribe(session, "user3@example.org", "weekly", source=Source.COMMAND)
    database.dispose()
    second = send(send_project, settings)
    assert second.complete and second.recipients_accepted == 9
    assert second.skipped_unsubscribed == 1
    delivered = fake_sendgrid.delivered()
    assert set(delivered) == everyone() - {"user3@example.org"}
    assert set(delivered.values()) == {1}


def test_server_errors_are_retried(send_project, fake_sendgrid):
    fake_sendgrid.script(Reply(500), Reply(503), Reply(502), Reply(504))
    report = send(send_project, SendSettings(batch_size=25, concurrency=1, max_retries=5,
                                             backoff_base=0.01))
    assert report.complete and report.requests == 5
    assert set(fake_sendgrid.delivered().values()) == {1}
    assert [b.attempts for b in batches(send_project)] == [5]


def test_a_connection_dropped_after_sending_is_ambiguous_not_retried(send_project,
                                                                     fake_sendgrid):
    # The fake reads the whole request, then closes without answering: SendGrid may
    # have accepted it, so sending it again on its own could deliver it twice.
    fake_sendgrid.script(DROP)
    settings = SendSettings(batch_size=10, concurrency=1, max_retries=5, backoff_base=0.01)
    first = send(send_project, settings)
    assert [p.number for p in first.ambiguous] == [1] and first.total_ambiguous == 10
    assert "broke before SendGrid answered" in first.ambiguous[0].message
    assert [b.state for b in batches(send_project)] == ["submitting", "accepted", "accepted"]
    again = send(send_project, settings, retry_ambiguous=True)
    assert again.complete and again.recipients_accepted == 10


def test_retries_are_bounded_and_back_off(send_project, fake_sendgrid):
    fake_sendgrid.script(*[Reply(503)] * 10)
    settings = SendSettings(batch_size=25, concurrency=1, max_retries=2, backoff_base=0.1)
    started = time.perf_counter()
    report = send(send_project, settings)
    elapsed = time.perf_counter() - started
    assert report.requests == 3 and not report.complete
    assert "gave up after 3 attempts" in report.failed[0].message
    assert elapsed >= 0.05 + 0.1  # two waits: ≥ half of 0.1 and of 0.2 (jitter)
    assert batches(send_project)[0].state == BatchState.FAILED


def test_backoff_is_exponential_with_jitter_and_capped():
    settings = SendSettings(backoff_base=1.0, backoff_cap=10.0)
    policy = settings.retry_policy()
    waits = [[policy.backoff(n) for _ in range(50)] for n in (1, 2, 3, 6)]
    assert all(0.5 <= w <= 1.0 for w in waits[0])
    assert all(1.0 <= w <= 2.0 for w in waits[1])
    assert all(2.0 <= w <= 4.0 for w in waits[2])
    assert all(5.0 <= w <= 10.0 for w in waits[3])
    assert len(set(waits[0])) > 1


def test_429_waits_until_the_reset_time(send_project, fake_sendgrid):
    fake_sendgrid.script(Reply(429, reset_in=0.6))
    started = time.perf_counter()
    report = send(send_project, SendSettings(batch_size=25, concurrency=1))
    assert report.complete
    assert time.perf_counter() - started >= 0.5
    assert [status for _, _, status in fake_sendgrid.log] == [429, 202]


def test_429_with_a_reset_beyond_the_bound_stops_that_batch(send_project, fake_sendgrid):
    fake_sendgrid.script(Reply(429, reset_in=120))
    settings = SendSettings(batch_size=25, concurrency=1, rate_limit_max_wait=1.0)
    report = send(send_project, settings)
    assert not report.complete and "resets in" in report.failed[0].message
    assert batches(send_project)[0].state == BatchState.FAILED


def test_400_stops_the_batch_and_shows_sendgrids_errors(send_project, fake_sendgrid):
    fake_sendgrid.script(Reply(400, errors=(("personalizations.0.to.0.email",
                                             "Does not contain a valid address."),)))
    report = send(send_project, SendSettings(batch_size=10, concurrency=1))
    assert not report.complete
    assert len(report.failed) == 1
    message = report.failed[0].message
    assert "personalizations.0.to.0.email" in message and "valid address" in message
    states = [b.state for b in batches(send_project)]
    assert states == ["failed", "accepted", "accepted"]
    assert batches(send_project)[0].attempts == 1  # not retried


def test_401_stops_the_whole_send_at_once(send_project, fake_sendgrid, monkeypatch):
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.wrong-key-value")
    with pytest.raises(NewsletterError) as caught:
        send(send_project, SendSettings(batch_size=5, concurrency=1))
    assert "SENDGRID_API_KEY" in caught.value.message
    assert "SG.wrong-key-value" not in caught.value.message
    states = [b.state for b in batches(send_project)]
    assert states.count("accepted") == 0 and states.count("failed") == 1
    assert states.count("pending") == 4
    assert len(fake_sendgrid.log) == 1


def test_403_names_permissions_and_sender_verification(send_project, fake_sendgrid):
    fake_sendgrid.script(Reply(403, errors=((
        "from", "The from address does not match a verified Sender Identity."),)))
    with pytest.raises(NewsletterError) as caught:
        send(send_project, SendSettings(batch_size=5, concurrency=1))
    assert "verified" in caught.value.message and "Mail Send" in caught.value.message
    assert [b.state for b in batches(send_project)].count("pending") == 4
    fake_sendgrid.reset()
    report = send(send_project, SendSettings(batch_size=5, concurrency=1))  # fixed: resumes
    assert report.complete and set(fake_sendgrid.delivered()) == everyone()


def test_a_timeout_leaves_the_batch_ambiguous_until_asked(send_project, fake_sendgrid):
    fake_sendgrid.hang_seconds = 3
    fake_sendgrid.script(HANG)
    settings = SendSettings(batch_size=10, concurrency=1, timeout=0.5)
    first = send(send_project, settings)
    assert [p.number for p in first.ambiguous] == [1] and first.total_ambiguous == 10
    assert [b.state for b in batches(send_project)] == ["submitting", "accepted", "accepted"]
    with pytest.raises(NewsletterError, match="no answer") as caught:
        send(send_project, settings)
    assert "--retry-ambiguous" in caught.value.hint
    again = send(send_project, settings, retry_ambiguous=True)
    assert again.complete and again.recipients_accepted == 10
    delivered = fake_sendgrid.delivered()  # the hung request was in fact accepted
    assert {e for e, n in delivered.items() if n == 2} == everyone(10)


def test_several_requests_in_flight_with_one_client_per_thread(send_project, fake_sendgrid,
                                                              monkeypatch):
    clients: dict[int, set[int]] = {}
    original = SendGridClient._api

    def spy(self):
        client = original(self)
        clients.setdefault(id(client.request_headers), set()).add(threading.get_ident())
        return client

    monkeypatch.setattr(SendGridClient, "_api", spy)
    fake_sendgrid.delay = 0.2
    report = send(send_project, SendSettings(batch_size=5, concurrency=3))
    assert report.complete
    assert fake_sendgrid.max_in_flight >= 2
    assert len(clients) >= 2
    assert all(len(threads) == 1 for threads in clients.values())


def test_test_send_goes_only_to_the_addresses_and_records_nothing(send_project,
                                                                  fake_sendgrid):
    report = send(send_project, test_addresses=("me@example.org", "you@example.org"))
    assert report.recipients_accepted == 2
    body = fake_sendgrid.accepted[0].body
    assert body["subject"].startswith("[TEST] ")
    assert fake_sendgrid.accepted[0].emails == ["me@example.org", "you@example.org"]
    assert campaigns(send_project) == []


def test_dry_run_builds_every_request_and_sends_none(send_project, fake_sendgrid):
    report = send(send_project, dry_run=True)
    assert report.requests == 3 and report.recipients_accepted == 25
    assert report.bytes_built > 25 * 300
    assert fake_sendgrid.requests_seen == 0 and fake_sendgrid.log == []
    assert campaigns(send_project) == []


def test_sandbox_sets_sandbox_mode_and_records_nothing(send_project, fake_sendgrid):
    report = send(send_project, sandbox=True)
    assert report.requests == 3
    assert all(item.sandbox for item in fake_sendgrid.accepted)
    assert {status for _, _, status in fake_sendgrid.log} == {200}
    assert campaigns(send_project) == []
    assert send(send_project).complete  # the real send is still possible


def test_sandbox_needs_the_sendgrid_transport(send_project):
    with pytest.raises(NewsletterError, match="sandbox"):
        send(send_project, sandbox=True, transport="outbox")


def test_schedule_creates_a_batch_id_and_cancel_cancels_it(send_project, fake_sendgrid):
    when = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=5)).replace(microsecond=0)
    report = send(send_project, at=when)
    assert report.complete
    bodies = [item.body for item in fake_sendgrid.accepted]
    batch_ids = {b["batch_id"] for b in bodies}
    assert len(batch_ids) == 1 and batch_ids <= fake_sendgrid.batch_ids
    assert {b["send_at"] for b in bodies} == {int(when.timestamp())}
    result = cancel_send(send_project, ISSUE, "weekly")
    assert result.recipients == 25
    assert fake_sendgrid.scheduled == {batch_ids.pop(): "cancel"}
    assert campaigns(send_project)[0].status == CampaignStatus.CANCELLED
    with pytest.raises(NewsletterError, match="already cancelled"):
        cancel_send(send_project, ISSUE, "weekly")
    assert send(send_project).complete  # after cancelling, it can be sent again


def test_schedule_more_than_72_hours_ahead_is_refused(send_project, fake_sendgrid):
    when = dt.datetime.now(dt.UTC) + dt.timedelta(hours=73)
    with pytest.raises(NewsletterError, match="72 hours"):
        send(send_project, at=when)
    assert fake_sendgrid.log == []


def test_cancel_too_late_is_refused(send_project, fake_sendgrid):
    when = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    send(send_project, at=when)
    with pytest.raises(NewsletterError, match="too late"):
        cancel_send(send_project, ISSUE, "weekly", now=when - dt.timedelta(minutes=5))
    assert fake_sendgrid.scheduled == {}


def test_parse_at_reads_zone_names_and_offsets():
    berlin = parse_at("2026-12-01 09:00 Europe/Berlin")
    assert berlin.astimezone(dt.UTC) == dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
    assert parse_at("2026-12-01T09:00+02:00").utcoffset() == dt.timedelta(hours=2)
    assert parse_at("2026-12-01 09:00", "UTC").tzinfo is not None
    for bad in ("tomorrow", "2026-12-01 09:00 Mars/Olympus", "2026-13-01 09:00 UTC"):
        with pytest.raises(NewsletterError):
            parse_at(bad)


def test_sendgrid_without_a_key_is_a_clear_error(send_project, monkeypatch):
    monkeypatch.delenv("SENDGRID_API_KEY")
    with pytest.raises(NewsletterError, match="SENDGRID_API_KEY"):
        send(send_project)


def test_sending_to_a_list_refuses_a_short_secret(send_project, monkeypatch):
    # Without NEWSLETTER_SECRET the project's subscribers/.secret is used (issue 12, 15).
    monkeypatch.setenv("NEWSLETTER_SECRET", "too-short")
    with pytest.raises(NewsletterError, match="NEWSLETTER_SECRET"):
        send(send_project)


def test_the_fake_enforces_the_documented_limits(fake_sendgrid):
    """Each limit the fake checks, shown to be checked (so the other tests mean something)."""
    from newsletter.delivery.transports import Rejected

    transport = SendGridTransport(fake_sendgrid.api_key, host=fake_sendgrid.url, timeout=5)

    def body(**changes):
        base = {"personalizations": [{"to": [{"email": "a@example.org"}]}],
                "from": {"email": "brief@example.org"}, "subject": "Hi",
                "content": [{"type": "text/plain", "value": "x"}]}
        base.update(changes)
        return base

    transport.send(body())
    people = [{"to": [{"email": f"p{i}@example.org"}]} for i in range(1001)]
    cases = {
        "personalizations": body(personalizations=people),
        "reserved": body(personalizations=[{"to": [{"email": "a@example.org"}],
                                            "headers": {"Reply-To": "x@example.org"}}]),
        "substitutions": body(personalizations=[{"to": [{"email": "a@example.org"}],
                                                 "substitutions": {"-x-": "y" * 10_001}}]),
        "custom_args": body(custom_args={"k": "v" * 10_001}),
        "categories": body(categories=[f"c{i}" for i in range(11)]),
        "long category": body(categories=["c" * 256]),
        "send_at": body(send_at=int(time.time()) + 73 * 3600),
        "schema": body(**{"from": {"name": "no address"}}),
        "unknown batch": body(send_at=int(time.time()) + 3600, batch_id="nope"),
        "html first": body(content=[{"type": "text/html", "value": "<p>x"},
                                    {"type": "text/plain", "value": "x"}]),
    }
    for name, case in cases.items():
        with pytest.raises(Rejected):
            transport.send(case)
        assert fake_sendgrid.rejected[-1][0] == 400, name
    assert len(fake_sendgrid.accepted) == 1


def test_helper_processes_send_the_same_valid_requests(send_project, fake_sendgrid,
                                                        monkeypatch):
    import newsletter.delivery.runner as runner_module

    started = []

    class Spy(runner_module.HelperSenders):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self.processes)

    monkeypatch.setattr(runner_module, "HelperSenders", Spy)
    populate(send_project, "weekly", 75, start=25)  # 100 people, 10 batches: helpers build
    settings = SendSettings(batch_size=10, concurrency=2, build_processes=2)
    report = send(send_project, settings)
    assert report.complete and fake_sendgrid.rejected == []
    assert set(fake_sendgrid.delivered()) == everyone(100)
    assert set(fake_sendgrid.delivered().values()) == {1}
    numbers = sorted(int(item.batch) for item in fake_sendgrid.accepted)
    assert numbers == list(range(1, 11))
    assert started == [2]


@pytest.mark.parametrize("helpers", [0, 2], ids=["main process", "helper processes"])
def test_an_address_an_older_version_stored_is_left_out_and_the_rest_goes(
        send_project, fake_sendgrid, helpers, monkeypatch):
    # SendGrid answers 501 for a non-ASCII part before the @: it never reaches a request.
    import newsletter.delivery.runner as runner_module

    started, real = [], runner_module.HelperSenders
    monkeypatch.setattr(runner_module, "HelperSenders",
                        lambda *args: started.append(1) or real(*args))
    populate(send_project, "weekly", 75, start=25)  # 100 people, 10 batches
    store_as_an_older_version_did(send_project, "user3@example.org", "josé@example.org")
    store_as_an_older_version_did(send_project, "user57@example.org", "zoë@example.org")
    fake_sendgrid.script(Reply(503))  # josé's batch is claimed twice: he is named once
    settings = SendSettings(batch_size=10, concurrency=1, build_processes=helpers,
                            backoff_base=0.01, backoff_cap=0.05)
    report = send(send_project, settings)
    assert report.complete and fake_sendgrid.rejected == [(503, [])]
    assert sorted(report.refused) == ["josé@example.org", "zoë@example.org"]
    assert report.recipients_accepted == 98 and report.skipped_unsubscribed == 0
    assert set(fake_sendgrid.delivered()) == everyone(100) - {"user3@example.org",
                                                              "user57@example.org"}
    assert set(fake_sendgrid.delivered().values()) == {1}
    by_batch = {int(item.batch): len(item.emails) for item in fake_sendgrid.accepted}
    assert by_batch[1] == by_batch[6] == 9  # their batches went, without them
    assert all(b.state == BatchState.ACCEPTED for b in batches(send_project))
    (overview,) = campaigns_status(send_project)
    assert [(n, e) for n, e, _why in overview.not_delivered] == [
        (1, "josé@example.org"), (6, "zoë@example.org")]
    assert all(why.startswith(REASON) for _n, _e, why in overview.not_delivered)
    # `newsletter status`: accepted counts the 98 SendGrid took, not the 2 left out.
    assert overview.counts[BatchState.ACCEPTED] == StateCount(10, 98)
    assert overview.not_sent == StateCount(0, 2)
    assert started == ([1] if helpers else [])
    with pytest.raises(NewsletterError, match=r"already sent to 'weekly' \(98 recipients"):
        send(send_project, settings)


def test_an_unreachable_api_is_retried_then_the_batch_fails(send_project, monkeypatch):
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("SENDGRID_API_HOST", f"http://127.0.0.1:{port}")
    settings = SendSettings(batch_size=25, concurrency=1, max_retries=2, backoff_base=0.01)
    report = send(send_project, settings)
    assert not report.complete and report.requests == 3
    assert "cannot reach" in report.failed[0].message
    assert batches(send_project)[0].state == BatchState.FAILED


@pytest.mark.postgres
def test_send_and_resume_on_postgresql(sample_project, fake_sendgrid, postgres_url,
                                       monkeypatch):
    from newsletter.project import Project

    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", postgres_url)
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    own_identity(sample_project)  # real sends refuse the sample's address
    project = Project(sample_project)
    populate(project, "weekly", 100)
    store_as_an_older_version_did(project, "user95@example.org", "zoë@example.org")
    fake_sendgrid.script(Reply(400, errors=(("subject", "nope"),)))
    settings = SendSettings(batch_size=10, concurrency=2, build_processes=2)
    first = send(project, settings)
    assert not first.complete and len(first.failed) == 1
    second = send(project, settings)
    assert second.complete and first.recipients_accepted + second.recipients_accepted == 99
    assert set(fake_sendgrid.delivered()) == everyone(100) - {"user95@example.org"}
    assert set(fake_sendgrid.delivered().values()) == {1}
    (overview,) = campaigns_status(project)  # `status` counts the one left out apart
    assert overview.counts[BatchState.ACCEPTED] == StateCount(10, 99)
    assert overview.not_sent == StateCount(0, 1)
    assert [email for _n, email, _why in overview.not_delivered] == ["zoë@example.org"]
    with pytest.raises(NewsletterError, match=r"already sent to 'weekly' \(99 recipients"):
        send(project, settings)


def test_a_plain_http_unsubscribe_address_is_warned_about(send_project, fake_sendgrid):
    from newsletter.project import Project

    plan = plan_send(send_project, SendOptions(ISSUE, list_slug="weekly", transport="sendgrid",
                                               dry_run=True), FAST)
    assert not any("is not https" in w for w in plan.warnings)
    config = send_project.root / "newsletter.toml"
    config.write_text(config.read_text().replace('web_url = "https://', 'web_url = "http://'))
    plan = plan_send(Project(send_project.root), SendOptions(
        ISSUE, list_slug="weekly", transport="sendgrid", dry_run=True), FAST)
    assert any("web_url 'http://news.example.org' is not https" in w for w in plan.warnings)
