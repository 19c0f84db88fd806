"""Issue 12, item 16: with an unsubscribe group and no web service, SendGrid's own link."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from newsletter.delivery.planning import SendOptions, SendSettings, plan_send
from newsletter.delivery.send import run_send
from newsletter.project import Project

ASM_UNSUBSCRIBE_URL = "<%asm_group_unsubscribe_raw_url%>"  # SendGrid's substitution tag
ISSUE = Path("issues/2021-02-01.yaml")
SETTINGS = SendSettings(batch_size=10, concurrency=1, timeout=5.0, max_retries=1,
                        backoff_base=0.01)


def _group_without_web_service(root: Path, *, mailto: bool = True) -> Project:
    toml = root / "newsletter.toml"
    text = toml.read_text(encoding="utf-8")
    text = text.replace('web_url = "https://news.example.org"\n', "")
    text = text.replace("[delivery]\n", "[delivery]\nsendgrid_unsubscribe_group = 4242\n")
    if not mailto:
        text = text.replace('unsubscribe_email = "unsubscribe@example.org"\n', "")
    toml.write_text(text, encoding="utf-8")
    project = Project(root)
    assert not project.config.web_url
    return project


def _send(project: Project, transport: str) -> None:
    plan = plan_send(project, SendOptions(ISSUE, list_slug="weekly", transport=transport),
                     SETTINGS)
    assert run_send(plan).complete


def test_sendgrid_body_uses_the_group_unsubscribe_substitution(send_project, fake_sendgrid
                                                                ) -> None:
    project = _group_without_web_service(send_project.root)
    _send(project, "sendgrid")
    assert fake_sendgrid.rejected == []  # every body validated against SendGrid's schema
    body = fake_sendgrid.accepted[0].body
    assert body["asm"] == {"group_id": 4242}
    text, html = (part["value"] for part in body["content"])
    assert ASM_UNSUBSCRIBE_URL in text and ASM_UNSUBSCRIBE_URL in html
    assert f'href="{ASM_UNSUBSCRIBE_URL}"' in html
    assert "/unsubscribe/" not in text + html  # no link to a page nobody hosts
    for person in body["personalizations"]:
        assert person["headers"] == {
            "List-Unsubscribe": "<mailto:unsubscribe@example.org?subject=unsubscribe>"}


def test_without_unsubscribe_email_sendgrid_keeps_its_own_header(send_project, fake_sendgrid
                                                                  ) -> None:
    project = _group_without_web_service(send_project.root, mailto=False)
    _send(project, "sendgrid")
    body = fake_sendgrid.accepted[0].body
    assert all("headers" not in p for p in body["personalizations"])
    assert ASM_UNSUBSCRIBE_URL in body["content"][0]["value"]


def test_the_outbox_shows_the_same(send_project) -> None:
    project = _group_without_web_service(send_project.root)
    _send(project, "outbox")
    files = sorted((project.outbox_dir / "2021-02-01").glob("*.eml"))
    assert len(files) == 25
    message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert message["List-Unsubscribe"] == "<mailto:unsubscribe@example.org?subject=unsubscribe>"
    assert message["List-Unsubscribe-Post"] is None
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert ASM_UNSUBSCRIBE_URL in text and ASM_UNSUBSCRIBE_URL in html
    assert "/unsubscribe/" not in text + html
