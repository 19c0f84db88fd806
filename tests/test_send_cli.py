"""`newsletter send`, `status` and `cancel` from the command line; send_one; the outbox."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import re
import stat
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import text

from newsletter.cli import main
from newsletter.delivery import send_one
from newsletter.project import Project
from newsletter.tokens import read_unsubscribe_token
from tests.plugins.fake_sendgrid import (
    OWN_FROM_EMAIL,
    SECRET,
    populate,
    store_as_an_older_version_did,
)

ISSUE = "issues/2021-02-01.yaml"


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def read_eml(path: Path) -> email.message.EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def test_summary_then_no_sends_nothing(send_project, fake_sendgrid):
    result = run("send", ISSUE, "--list", "weekly", input="n\n")
    assert result.exit_code != 0
    for expected in ("Subject", "Weekly Brief: leaked police files", OWN_FROM_EMAIL,
                     "weekly", "25", "outbox"):
        assert expected in result.output
    assert not (send_project.root / "outbox").exists()
    assert "No sends yet" in run("status").output


def test_outbox_send_end_to_end_with_a_generated_secret(sample_project, monkeypatch):
    monkeypatch.delenv("NEWSLETTER_SECRET", raising=False)
    project = Project(sample_project)
    populate(project, "weekly", 3)
    result = run("send", ISSUE, "--yes")  # list and transport from newsletter.toml
    assert result.exit_code == 0, result.output
    folder = sample_project / "outbox" / "2021-02-01"
    assert "The messages are in outbox/2021-02-01/" in result.output
    assert "subscribers/.secret" in result.output
    files = sorted(p.name for p in folder.iterdir())
    assert files == [f"user{i}@example.org.eml" for i in range(3)]
    secret_file = sample_project / "subscribers" / ".secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    message = read_eml(folder / "user1@example.org.eml")
    assert message["To"] == "User 1 <user1@example.org>"
    unsubscribe = message["List-Unsubscribe"]
    token = re.search(r"/unsubscribe/([^>]+)>", unsubscribe).group(1)
    subscriber_id, slug = read_unsubscribe_token(secret_file.read_text().strip().encode(),
                                                 token)
    assert slug == "weekly" and subscriber_id > 0
    assert unsubscribe.endswith("<mailto:unsubscribe@example.org?subject=unsubscribe>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "Hello User," in text and f"/unsubscribe/{token}" in html
    assert "[[nl:" not in html + text
    again = run("send", ISSUE, "--yes")
    assert again.exit_code != 0 and "already sent" in again.output


def test_transport_option_overrides_the_config(send_project, fake_sendgrid):
    result = run("send", ISSUE, "--list", "weekly", "--transport", "sendgrid", "--yes")
    assert result.exit_code == 0, result.output
    assert sum(fake_sendgrid.delivered().values()) == 25
    assert not (send_project.root / "outbox").exists()
    status = run("status", ISSUE).output
    assert "sendgrid" in status and "sent" in status and "25" in status


def test_test_option_takes_several_addresses(send_project, fake_sendgrid):
    result = run("send", ISSUE, "--test", "me@example.org,you@example.org", "--test",
                 "boss@example.org", "--transport", "sendgrid", "--yes")
    assert result.exit_code == 0, result.output
    assert sorted(fake_sendgrid.delivered()) == [
        "boss@example.org", "me@example.org", "you@example.org"]
    assert "No sends yet" in run("status").output


def test_failed_send_says_how_to_resume_and_status_lists_the_batch(send_project,
                                                                   fake_sendgrid):
    from tests.plugins.fake_sendgrid import Reply

    fake_sendgrid.script(Reply(400, errors=(("subject", "The subject is required."),)))
    result = run("send", ISSUE, "--list", "weekly", "--transport", "sendgrid", "--yes")
    assert result.exit_code != 0
    assert "subject: The subject is required." in result.output
    assert "again to resume" in result.output
    status = run("status").output
    assert "failed" in status and "Batches needing attention" in status


def test_schedule_and_cancel_from_the_command_line(send_project, fake_sendgrid):
    when = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    at = f"{when:%Y-%m-%d %H:%M} UTC"
    result = run("send", ISSUE, "--list", "weekly", "--transport", "sendgrid", "--at", at,
                 "--yes")
    assert result.exit_code == 0, result.output
    assert "Scheduled for" in result.output
    assert "scheduled" in run("status").output
    cancelled = run("cancel", ISSUE, "--list", "weekly")
    assert cancelled.exit_code == 0, cancelled.output
    assert list(fake_sendgrid.scheduled.values()) == ["cancel"]
    too_far = run("send", ISSUE, "--list", "weekly", "--transport", "sendgrid", "--at",
                  "2099-01-01 09:00 Europe/Berlin", "--yes")
    assert too_far.exit_code != 0 and "72 hours" in too_far.output


def test_missing_key_is_reported_without_traceback(send_project, monkeypatch):
    monkeypatch.delenv("SENDGRID_API_KEY")
    result = run("send", ISSUE, "--transport", "sendgrid", "--yes")
    assert result.exit_code != 0
    assert "SENDGRID_API_KEY" in result.output and "Traceback" not in result.output


def test_secret_is_never_printed(send_project, fake_sendgrid):
    result = run("send", ISSUE, "--transport", "sendgrid", "--yes")
    assert SECRET not in result.output and fake_sendgrid.api_key not in result.output


def test_send_one_through_the_outbox_keeps_every_message(sample_project):
    project = Project(sample_project)
    for subject in ("Please confirm", "Welcome"):
        send_one(project, to="ann@example.org", subject=subject, html="<p>Hi</p>", text="Hi")
    files = sorted((sample_project / "outbox" / "transactional").glob("*.eml"))
    assert [read_eml(f)["Subject"] for f in files] == ["Please confirm", "Welcome"]
    assert read_eml(files[0])["To"] == "ann@example.org"


def test_send_one_through_sendgrid(sample_project, fake_sendgrid):
    from tests.plugins.fake_sendgrid import Reply

    fake_sendgrid.script(Reply(503))  # retried
    send_one(Project(sample_project), to="ann@example.org", subject="Please confirm",
             html="<p>Click</p>", text="Click", transport="sendgrid")
    body = fake_sendgrid.accepted[0].body
    assert body["subject"] == "Please confirm"
    assert fake_sendgrid.accepted[0].emails == ["ann@example.org"]
    assert body["reply_to"] == {"email": "comms@example.org"}


def test_status_shows_what_readers_did(sample_project, monkeypatch):
    from collections import Counter

    from newsletter.store import open_project_database
    from newsletter.store.events import add_counts

    monkeypatch.delenv("NEWSLETTER_SECRET", raising=False)
    project = Project(sample_project)
    populate(project, "weekly", 3)
    assert run("send", ISSUE, "--yes").exit_code == 0
    assert "What readers did" not in run("status").output  # no events yet
    database = open_project_database(project)
    with database.session() as session:
        (campaign_id,) = session.execute(text("SELECT id FROM campaigns")).scalars()
        add_counts(session, Counter({(campaign_id, "delivered"): 3, (campaign_id, "open"): 2,
                                     (campaign_id, "machine_open"): 1,
                                     (campaign_id, "unsubscribe"): 1,
                                     (campaign_id, "group_unsubscribe"): 1}))
        session.commit()
    database.dispose()
    output = run("status").output
    assert "What readers did" in output
    row = next(line for line in output.splitlines() if line.startswith(" 2021-02-01")
               and "weekly" in line and "outbox" not in line)
    assert row.split()[2:] == ["3", "2", "1", "0", "0", "0", "2"]
    document = json.loads(run("status", ISSUE, "--json").output)
    (sent,) = document["sends"]
    assert (sent["issue"], sent["list"], sent["transport"], sent["status"]) == (
        "2021-02-01", "weekly", "outbox", "sent")
    assert sent["recipients"]["accepted"] == 3 and sent["recipients"]["pending"] == 0
    assert sent["events"] == {"delivered": 3, "open": 2, "machine_open": 1, "unsubscribe": 1,
                              "group_unsubscribe": 1}
    assert sent["finished"] is not None and sent["messages"] is None


def test_status_json_before_any_send(sample_project):
    assert json.loads(run("status", "--json").output) == {"sends": []}


def test_dry_run_and_sandbox_from_the_command_line(send_project, fake_sendgrid):
    common = ("send", ISSUE, "--list", "weekly", "--transport", "sendgrid", "--yes")
    dry = run(*common, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert fake_sendgrid.requests_seen == 0 and fake_sendgrid.log == []
    assert "No sends yet" in run("status").output
    sandbox = run(*common, "--sandbox")
    assert sandbox.exit_code == 0, sandbox.output
    assert fake_sendgrid.accepted and all(item.sandbox for item in fake_sendgrid.accepted)
    assert "No sends yet" in run("status").output
    sandboxed = len(fake_sendgrid.accepted)
    real = run(*common)
    assert real.exit_code == 0, real.output
    after = fake_sendgrid.accepted[sandboxed:]
    assert after and not any(item.sandbox for item in after)


def test_a_send_shows_progress_and_closes_with_a_report(send_project, fake_sendgrid):
    result = run("send", ISSUE, "--list", "weekly", "--transport", "sendgrid", "--yes")
    assert result.exit_code == 0, result.output
    assert re.search(r"Sending .* 25/25 .*/s .*ETA", result.output), result.output
    assert "Send report" in result.output
    assert re.search(r"Accepted\s*│\s*25 recipients in \d+ request", result.output)


def test_an_outbox_send_leaves_out_an_address_an_older_version_stored(sample_project,
                                                                       monkeypatch):
    monkeypatch.delenv("NEWSLETTER_SECRET", raising=False)
    project = Project(sample_project)
    populate(project, "weekly", 3)
    store_as_an_older_version_did(project, "user1@example.org", "josé@example.org")
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 0, result.output
    folder = sample_project / "outbox" / "2021-02-01"
    assert sorted(p.name for p in folder.iterdir()) == ["user0@example.org.eml",
                                                        "user2@example.org.eml"]
    said = " ".join(result.output.split())
    assert ("Not sent to josé@example.org: the address has non-ASCII letters before the @, "
            "which mail servers do not accept.") in said
    assert "`newsletter subscribers add NEW@ADDRESS --list weekly`" in said
    assert "`newsletter subscribers remove josé@example.org`" in said
    assert "went to every recipient of 'weekly' except the 1 address(es) named above" in said
    assert "ambiguous" not in said and "Traceback" not in said
    table = run("status").output
    status = " ".join(table.split())
    assert "Recipients not sent to" in status and "josé@example.org" in status
    assert "non-ASCII letters before the @" in status
    # Accepted counts the two the outbox took; the one left out is counted apart.
    # (Accepted, Pending, Failed, Ambiguous, Not sent: the last column only when needed.)
    assert re.search(r"outbox +sent +2 +0 +0 +0 +1 *$", table, re.MULTILINE), table
    (sent,) = json.loads(run("status", "--json").output)["sends"]
    assert sent["status"] == "sent" and sent["recipients"]["submitting"] == 0
    assert sent["recipients"]["accepted"] == 2 and sent["recipients"]["not sent"] == 1
    assert sum(sent["recipients"].values()) == sent["recipients_total"] == 3
    assert sent["batches"] == {"accepted": 1, "pending": 0, "failed": 0, "submitting": 0,
                               "in flight": 0}
    assert [row["email"] for row in sent["not_delivered"]] == ["josé@example.org"]
    again = run("send", ISSUE, "--yes")  # never sent again, never ambiguous
    assert again.exit_code != 0 and "already sent" in again.output
    removed = run("subscribers", "remove", "josé@example.org")  # the next step works
    assert removed.exit_code == 0, removed.output
    assert "Unsubscribed josé@example.org from weekly" in removed.output


def test_the_report_counts_only_the_recipients_a_send_handed_over(sample_project, monkeypatch,
                                                                   tmp_path):
    # The address the send left out is not among the report's recipients: the same count
    # `newsletter status` shows under "Not sent", said apart in the table and the HTML.
    monkeypatch.delenv("NEWSLETTER_SECRET", raising=False)
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    project = Project(sample_project)
    populate(project, "weekly", 3)
    store_as_an_older_version_did(project, "user1@example.org", "josé@example.org")
    assert run("send", ISSUE, "--yes").exit_code == 0
    (sent,) = json.loads(run("status", "--json").output)["sends"]
    figures = json.loads(run("report", ISSUE, "--json").output)["campaign"]
    assert figures["recipients"] == sent["recipients"]["accepted"] == 2
    assert figures["not_sent"] == sent["recipients"]["not sent"] == 1
    page = tmp_path / "report.html"
    table = run("report", ISSUE, "-o", str(page))
    assert table.exit_code == 0, table.output
    said = " ".join(table.output.split())
    assert "Recipients │ 2" in said and "not sent: 1" in said, said
    assert "Traceback" not in said
    html = " ".join(page.read_text(encoding="utf-8").split())
    assert "2 recipients (1 more not sent: its address was refused for good" in html


def test_an_outbox_batch_that_stops_points_at_the_outbox_not_sendgrid(sample_project,
                                                                     monkeypatch):
    from newsletter.delivery import transports

    real_write = transports.atomic_write

    def disk_full(path: Path, data: bytes, durable: bool = True) -> None:
        if "outbox" not in path.parts:  # preflight's own message goes to a temporary folder
            return real_write(path, data, durable=durable)
        raise OSError(28, "No space left on device")

    monkeypatch.delenv("NEWSLETTER_SECRET", raising=False)
    populate(Project(sample_project), "weekly", 3)
    monkeypatch.setattr(transports, "atomic_write", disk_full)
    result = run("send", ISSUE, "--yes")
    assert result.exit_code != 0
    said = " ".join(result.output.split())
    assert "look in" in said and "outbox/2021-02-01" in said and "--retry-ambiguous" in said
    assert "SendGrid" not in said.split("Next:")[-1]
