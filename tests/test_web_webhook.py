"""SendGrid's signed Event Webhook through a real uvicorn server."""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from newsletter.errors import NewsletterError
from newsletter.store import HistoryEntry, add_subscriber, find_subscriber, history
from newsletter.store import events as events_module
from newsletter.store.events import campaign_stats
from newsletter.store.models import WebhookEvent
from newsletter.web.app import create_app
from newsletter.web.context import Limits
from newsletter.web.webhook import (
    PUBLIC_KEY_ENV,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookVerifier,
    verifier_from_env,
)
from tests.test_web import Service, start_service

# SendGrid's published test vector (sendgrid-python, test/unit/test_eventwebhook.py).
SG_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw"
    "+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)
SG_SIGNATURE = (
    "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
)
SG_TIMESTAMP = "1600112502"
SG_PAYLOAD = json.dumps([{
    "email": "hello@world.com",
    "event": "dropped",
    "reason": "Bounced Address",
    "sg_event_id": "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
    "sg_message_id": "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",
    "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
    "timestamp": 1600112492,
}], sort_keys=True, separators=(",", ":")) + "\r\n"


class Signer:
    """A P-256 key pair made for the test, signing like SendGrid does."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_b64 = base64.b64encode(der).decode()

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.private.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {SIGNATURE_HEADER: base64.b64encode(signature).decode(),
                TIMESTAMP_HEADER: stamp, "content-type": "application/json"}


@pytest.fixture
def signer() -> Signer:
    return Signer()


@pytest.fixture
def service(sample_project: Path, monkeypatch: pytest.MonkeyPatch,
            signer: Signer) -> Iterator[Service]:
    yield from start_service(sample_project, monkeypatch,
                             verifier=WebhookVerifier(signer.public_b64))


def event(kind: str, address: str, **fields: object) -> dict[str, object]:
    return {"event": kind, "email": address, "sg_event_id": f"{random.getrandbits(128):032x}",
            "timestamp": int(time.time()), "nl_campaign": "7", "nl_list": "alerts",
            "nl_issue": "2021-02-01", "nl_batch": "1", **fields}


def post(service: Service, signer: Signer, events: object, **kwargs):  # type: ignore[no-untyped-def]
    body = json.dumps(events).encode()
    return service.client.post("/webhooks/sendgrid", content=body,
                               headers=signer.headers(body, **kwargs))


def subscriber_status(service: Service, address: str) -> str | None:
    with service.db.transaction() as session:
        found = find_subscriber(session, address)
        return found.status if found else None


def history_size(service: Service) -> int:
    with service.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(HistoryEntry))


def people(service: Service, *addresses: str) -> None:
    with service.db.transaction() as session:
        for address in addresses:
            add_subscriber(session, address, "alerts")
            add_subscriber(session, address, "weekly", status="subscribed")


def test_events_change_statuses_and_count_per_campaign(service: Service, signer: Signer) -> None:
    people(service, "b@example.org", "d@example.org", "s@example.org", "u@example.org",
           "g@example.org", "k@example.org", "o@example.org", "q@example.org", "p@example.org")
    batch = [
        event("dropped", "p@example.org", reason="Spam Reporting Address"),
        event("bounce", "b@example.org", type="bounce", reason="550 no such user"),
        event("bounce", "k@example.org", type="blocked", reason="spam filter"),
        event("dropped", "d@example.org", reason="Bounced Address"),
        event("dropped", "q@example.org", reason="Unsubscribed Address"),
        event("spamreport", "s@example.org"),
        event("unsubscribe", "u@example.org"),
        event("group_unsubscribe", "g@example.org", asm_group_id=42),
        event("delivered", "o@example.org"),
        event("delivered", "k@example.org"),
        event("open", "o@example.org"),
        event("open", "o@example.org", sg_machine_open=True),
        event("open", "k@example.org", sg_machine_open=True),
        event("click", "o@example.org", url="https://example.org/"),
        event("processed", "o@example.org", nl_campaign="8"),
    ]
    answer = post(service, signer, batch)
    assert answer.status_code == 200
    assert answer.json() == {"received": 15, "new": 15, "duplicates": 0, "ignored": 0,
                             "changes": 7}
    assert subscriber_status(service, "b@example.org") == "bounced"
    assert subscriber_status(service, "d@example.org") == "bounced"
    assert subscriber_status(service, "k@example.org") == "active"  # a block is temporary
    assert subscriber_status(service, "s@example.org") == "complained"
    assert subscriber_status(service, "p@example.org") == "complained"
    for address in ("u@example.org", "g@example.org", "q@example.org"):
        assert service.status(address, "alerts") == "unsubscribed"
        assert service.status(address, "weekly") == "subscribed"  # only the campaign's list
    with service.db.transaction() as session:
        assert campaign_stats(session, 7) == {
            "bounce": 1, "blocked": 1, "dropped": 3, "spamreport": 1, "unsubscribe": 1,
            "group_unsubscribe": 1, "delivered": 2, "open": 1, "machine_open": 2, "click": 1,
        }
        assert campaign_stats(session, 8) == {"processed": 1}
        [entry] = [h for h in history(session, "b@example.org") if h.list_id is None]
        assert entry.source == "webhook" and "550 no such user" in entry.detail


def test_an_unsubscribe_without_a_list_leaves_every_list(service: Service,
                                                        signer: Signer) -> None:
    # Events of mail this tool did not send carry no nl_list: the person asked SendGrid
    # to stop, so no list may keep mailing them.
    people(service, "x@example.org", "y@example.org")
    stray = event("unsubscribe", "x@example.org")
    del stray["nl_list"], stray["nl_campaign"]
    assert post(service, signer, [stray]).status_code == 200
    assert service.status("x@example.org", "alerts") == "unsubscribed"
    assert service.status("x@example.org", "weekly") == "unsubscribed"
    assert service.status("y@example.org", "weekly") == "subscribed"


def test_a_retried_batch_changes_nothing(service: Service, signer: Signer) -> None:
    people(service, "b@example.org", "u@example.org")
    batch = [event("bounce", "b@example.org", type="bounce"),
             event("unsubscribe", "u@example.org"), event("open", "u@example.org")]
    assert post(service, signer, batch).json()["new"] == 3
    before = history_size(service)
    with service.db.transaction() as session:
        stats = campaign_stats(session, 7)
    with service.db.transaction() as session:  # someone re-subscribes in between
        add_subscriber(session, "u@example.org", "alerts", status="subscribed",
                       resubscribe=True)
    again = post(service, signer, batch)  # SendGrid retries the same batch
    assert again.status_code == 200
    assert again.json() == {"received": 3, "new": 0, "duplicates": 3, "ignored": 0,
                            "changes": 0}
    assert history_size(service) == before + 1
    assert service.status("u@example.org", "alerts") == "subscribed"
    with service.db.transaction() as session:
        assert campaign_stats(session, 7) == stats
    inside = post(service, signer, [batch[2], batch[2]])  # the same event twice in one batch
    assert inside.json()["duplicates"] == 2


def test_a_batch_is_applied_in_one_transaction(service: Service, signer: Signer,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    people(service, "a@example.org", "b@example.org")
    batch = [event("spamreport", "a@example.org"), event("bounce", "b@example.org"),
             event("delivered", "a@example.org")]
    real = events_module.apply_actions

    def failing(session, changes, **kwargs):  # type: ignore[no-untyped-def]
        assert real(session, changes, **kwargs) == 2  # both status changes written...
        raise RuntimeError("disk full")  # ...then the batch fails

    monkeypatch.setattr(events_module, "apply_actions", failing)
    assert post(service, signer, batch).status_code == 500
    assert subscriber_status(service, "a@example.org") == "active"  # rolled back
    with service.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 0
        assert campaign_stats(session, 7) == {}
    monkeypatch.setattr(events_module, "apply_actions", real)
    assert post(service, signer, batch).json()["new"] == 3  # the retry applies it all
    assert subscriber_status(service, "a@example.org") == "complained"
    assert subscriber_status(service, "b@example.org") == "bounced"


def test_sendgrid_published_test_vector(sample_project: Path, monkeypatch) -> None:
    verifier = WebhookVerifier(SG_PUBLIC_KEY, clock=lambda: int(SG_TIMESTAMP) + 5)
    for service in start_service(sample_project, monkeypatch, verifier=verifier):
        headers = {SIGNATURE_HEADER: SG_SIGNATURE, TIMESTAMP_HEADER: SG_TIMESTAMP,
                   "content-type": "application/json"}
        answer = service.client.post("/webhooks/sendgrid", content=SG_PAYLOAD.encode(),
                                     headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["new"] == 1
        assert subscriber_status(service, "hello@world.com") == "bounced"
        tampered = SG_PAYLOAD.replace("Bounced", "Bouncer").encode()
        answer = service.client.post("/webhooks/sendgrid", content=tampered, headers=headers)
        assert answer.status_code == 403
        # With the real clock the 2020 timestamp is stale: a captured request cannot be replayed.
        verifier.clock = time.time
        answer = service.client.post("/webhooks/sendgrid", content=SG_PAYLOAD.encode(),
                                     headers=headers)
        assert answer.status_code == 403 and "stale" in answer.json()["error"]


def test_missing_invalid_tampered_and_stale_signatures(service: Service, signer: Signer) -> None:
    people(service, "v@example.org")
    body = json.dumps([event("spamreport", "v@example.org")]).encode()
    good = signer.headers(body)
    url = "/webhooks/sendgrid"
    assert service.client.post(url, content=body).status_code == 401
    assert service.client.post(url, content=body, headers={
        TIMESTAMP_HEADER: good[TIMESTAMP_HEADER]}).status_code == 401
    other = Signer().headers(body)
    flipped = base64.b64decode(good[SIGNATURE_HEADER])
    flipped = flipped[:-1] + bytes([flipped[-1] ^ 1])
    cases = [
        (body + b" ", good),  # body changed after signing
        (body, {**good, TIMESTAMP_HEADER: str(int(good[TIMESTAMP_HEADER]) + 1)}),
        (body, {**good, SIGNATURE_HEADER: base64.b64encode(flipped).decode()}),
        (body, {**good, SIGNATURE_HEADER: "not base64 !!"}),
        (body, {**good, SIGNATURE_HEADER: "A" * 5000}),
        (body, other),  # signed by somebody else's key
        (body, signer.headers(body, timestamp=int(time.time()) - 3600)),  # stale
        (body, signer.headers(body, timestamp=int(time.time()) + 3600)),  # from the future
        (body, {**good, TIMESTAMP_HEADER: "yesterday"}),
    ]
    for content, headers in cases:
        answer = service.client.post(url, content=content, headers=headers)
        assert answer.status_code == 403, headers
    assert subscriber_status(service, "v@example.org") == "active"
    assert service.client.post(url, content=body, headers=good).status_code == 200
    assert subscriber_status(service, "v@example.org") == "complained"


def test_malformed_json_and_odd_events(service: Service, signer: Signer) -> None:
    url = "/webhooks/sendgrid"
    for body in (b"[{not json", b'{"event": "open"}', b""):
        answer = service.client.post(url, content=body, headers=signer.headers(body))
        assert answer.status_code == 400, body
    not_utf8 = b"\xff\xfe[]"  # the helper checks text; such a body cannot be SendGrid's
    answer = service.client.post(url, content=not_utf8, headers=signer.headers(not_utf8))
    assert answer.status_code == 403
    odd = [1, "x", {"event": "open"}, {"event": "open", "sg_event_id": "x" * 500},
           {"event": "made-up", "sg_event_id": "e1"},
           {"event": "bounce", "sg_event_id": "e2", "email": "not an address"},
           {"event": "unsubscribe", "sg_event_id": "e3", "email": "nobody@example.org",
            "nl_list": "no-such-list"}]
    answer = post(service, signer, odd)
    assert answer.status_code == 200
    assert answer.json()["ignored"] == 5 and answer.json()["changes"] == 0


def test_oversized_webhook_body(sample_project: Path, monkeypatch, signer: Signer) -> None:
    limits = Limits(webhook_body=50_000)
    for service in start_service(sample_project, monkeypatch, limits=limits,
                                 verifier=WebhookVerifier(signer.public_b64)):
        batch = [event("delivered", f"p{i}@example.org") for i in range(400)]
        body = json.dumps(batch).encode()
        assert len(body) > 50_000
        answer = service.client.post("/webhooks/sendgrid", content=body,
                                     headers=signer.headers(body))
        assert answer.status_code == 413
        small = post(service, signer, batch[:100])  # a bigger limit than the forms' 16 KB
        assert small.status_code == 200 and small.json()["new"] == 100


def test_webhook_without_key_answers_503(sample_project: Path, monkeypatch, signer) -> None:
    for service in start_service(sample_project, monkeypatch, verifier=None):
        answer = post(service, signer, [event("open", "a@example.org")])
        assert answer.status_code == 503  # SendGrid keeps retrying until it is set


def test_database_outage_answers_503_and_the_retry_loses_nothing(
    service: Service, signer: Signer, tmp_path: Path
) -> None:
    people(service, "x@example.org")
    body = json.dumps([event("spamreport", "x@example.org")]).encode()
    database_file = Path(service.db.engine.url.database)
    service.db.engine.dispose()
    database_file.rename(tmp_path / "moved.db")
    database_file.mkdir()
    try:
        answer = service.client.post("/webhooks/sendgrid", content=body,
                                     headers=signer.headers(body))
        assert answer.status_code == 503 and answer.headers["retry-after"]
    finally:
        service.db.engine.dispose()
        database_file.rmdir()
        (tmp_path / "moved.db").rename(database_file)
    answer = service.client.post("/webhooks/sendgrid", content=body, headers=signer.headers(body))
    assert answer.status_code == 200 and answer.json()["new"] == 1
    assert subscriber_status(service, "x@example.org") == "complained"


def test_public_key_from_environment(monkeypatch: pytest.MonkeyPatch, signer: Signer) -> None:
    monkeypatch.delenv(PUBLIC_KEY_ENV, raising=False)
    assert verifier_from_env() is None
    pem = ("-----BEGIN PUBLIC KEY-----\n" + signer.public_b64 + "\n-----END PUBLIC KEY-----\n")
    monkeypatch.setenv(PUBLIC_KEY_ENV, pem)  # pasted as a PEM block: fine too
    body = b"[]"
    headers = signer.headers(body)
    verifier_from_env().verify(body, headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER])
    monkeypatch.setenv(PUBLIC_KEY_ENV, "secret-looking-but-wrong-key-material")
    with pytest.raises(NewsletterError) as caught:
        verifier_from_env()
    assert "secret-looking" not in str(caught.value) and PUBLIC_KEY_ENV in str(caught.value)


def test_old_event_ids_are_forgotten_at_start_up(service: Service, signer: Signer) -> None:
    import asyncio
    import threading
    from datetime import timedelta

    from newsletter.store import utcnow

    batch = [event("open", "a@example.org"), event("open", "a@example.org")]
    assert post(service, signer, batch).json()["new"] == 2
    with service.db.transaction() as session:
        old = session.get(WebhookEvent, batch[0]["sg_event_id"])
        old.received_at = utcnow() - timedelta(days=31)
    app = create_app(service.project, database=service.db, verifier=None)

    async def start_and_stop() -> None:
        async with app.router.lifespan_context(app):
            pass

    # In a thread of its own: Playwright's sync API (browser tests) keeps an event loop
    # running in the main thread, where asyncio.run() refuses to start.
    worker = threading.Thread(target=asyncio.run, args=(start_and_stop(),))
    worker.start()
    worker.join(timeout=30)
    with service.db.transaction() as session:
        assert session.get(WebhookEvent, batch[0]["sg_event_id"]) is None
        assert session.get(WebhookEvent, batch[1]["sg_event_id"]) is not None


def test_the_service_keeps_counts_only_when_privacy_is_aggregate(
    sample_project: Path, monkeypatch: pytest.MonkeyPatch, signer: Signer
) -> None:
    from newsletter.store.models import ReaderEvent

    config = sample_project / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        "[newsletter]\n", '[newsletter]\nprivacy = "aggregate"\n', 1), encoding="utf-8")
    for service in start_service(sample_project, monkeypatch,
                                 verifier=WebhookVerifier(signer.public_b64)):
        people(service, "ann@example.org")
        response = post(service, signer, [event("open", "ann@example.org"),
                                          event("click", "ann@example.org",
                                                url="https://example.org/story")])
        assert response.status_code == 200
        with service.db.transaction() as session:
            assert session.scalar(select(func.count()).select_from(ReaderEvent)) == 0
            assert campaign_stats(session, 7)["open"] == 1
