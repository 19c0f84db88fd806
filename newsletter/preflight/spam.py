"""Spam score: SpamAssassin's verdict on the exact message a subscriber receives."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from .message import Subject
from .report import CheckResult, Severity

SPAMD_ENV = "NEWSLETTER_SPAMD"  # "host:port" of a running spamd: use the faster spamc
TIME_LIMIT = 60.0
NO_LEARNING = "--cf=bayes_auto_learn 0"  # also how docs/preflight.md starts spamd
_TOTAL = re.compile(r"Content analysis details:\s+\((-?[\d.]+) points?, (-?[\d.]+) required\)")
_RULE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s+(.*)$")
# What to change for the rules a newsletter most often trips over.
ADVICE = {
    "MISSING_HEADERS": "The message has no To: header; sends always add one.",
    "REPLYTO_WITHOUT_TO_CC": "Sends always carry a To: header; check [sender] reply_to.",
    "HTML_IMAGE_RATIO_02": "Add more text, or fewer pictures: mostly-picture emails look like "
    "spam.",
    "HTML_IMAGE_RATIO_04": "Add more text, or fewer pictures.",
    "HTML_IMAGE_RATIO_06": "Add more text, or fewer pictures.",
    "HTML_IMAGE_ONLY_08": "The email is almost only pictures: add the words as text.",
    "HTML_IMAGE_ONLY_12": "The email is almost only pictures: add the words as text.",
    "HTML_IMAGE_ONLY_16": "The email is almost only pictures: add the words as text.",
    "HTML_FONT_LOW_CONTRAST": "Text nearly the colour of its background looks like hidden "
    "text: darken it.",
    "HTML_SHORT_LINK_IMG_1": "A linked picture with little text: add a sentence next to it.",
    "MIME_HTML_ONLY": "The plain-text part is missing: check templates/email.txt.j2.",
    "SUBJ_ALL_CAPS": "Write the subject in normal case, not CAPITALS.",
    "SUBJ_ILLEGAL_CHARS": "Remove unusual characters from the subject.",
    "FROM_EXCESS_BASE64": "Use a plainer From name in newsletter.toml.",
    "URIBL_BLOCKED": "A link's domain is on a block list: link another site.",
    "URIBL_ABUSE_SURBL": "A link's domain is on a spam block list: remove that link.",
    "URIBL_DBL_SPAM": "A link's domain is on a spam block list: remove that link.",
    "T_REMOTE_IMAGE": "Informational: the email loads pictures from the web.",
    "HTML_MESSAGE": "Informational: the email has an HTML part.",
    "EMPTY_MESSAGE": "The email has no text: check the issue's items.",
    "LOTS_OF_MONEY": "Words about large sums of money: rephrase if you can.",
    "FREEMAIL_FROM": "Send from your organisation's domain, not a free mail address.",
}


@dataclass(frozen=True)
class Rule:
    name: str
    points: float
    description: str


def parse_report(output: str) -> tuple[float, float, list[Rule]] | None:
    """(score, required, rules that fired) from SpamAssassin's report, or None."""
    total = _TOTAL.search(output)
    if total is None:
        return None
    rules: list[Rule] = []
    body = output[total.end():].split("\n")
    for line in body[3:]:  # the column titles and their underline
        match = _RULE.match(line)
        if match:
            rules.append(Rule(match.group(2), float(match.group(1)), match.group(3).strip()))
        elif line.startswith(" " * 20) and rules:
            last = rules[-1]
            rules[-1] = Rule(last.name, last.points, f"{last.description} {line.strip()}")
        elif not line.strip() and rules:
            break
    return float(total.group(1)), float(total.group(2)), rules


def spamd_configured() -> bool:
    """True when a spamd is configured and spamc is installed: a score costs milliseconds."""
    return bool(os.environ.get(SPAMD_ENV, "")) and shutil.which("spamc") is not None


def _command() -> list[str] | None:
    if spamd_configured():
        host, _, port = os.environ[SPAMD_ENV].rpartition(":")
        # -x: when spamd cannot be reached, exit 69 instead of passing the message through
        return ["spamc", "-x", "-d", host or "127.0.0.1", "-p", port or "783", "-R"]
    spamassassin = shutil.which("spamassassin")
    # Without bayes_auto_learn 0 each new email is learned as ham (or spam) into the
    # user's Bayes database: a side effect on the machine's mail filter, and 0.1 s.
    return [spamassassin, "-L", "-t", NO_LEARNING] if spamassassin else None


def check_spam(subject: Subject) -> CheckResult:
    """Run SpamAssassin (local tests only, no network) on the subscriber's message."""
    result = CheckResult("spam", "Spam score (SpamAssassin)")
    command = _command()
    if command is None:
        result.skipped = ("SpamAssassin is not installed, so the spam score was not checked "
                          "(install it: sudo apt-get install spamassassin)")
        return result
    try:
        done = subprocess.run(command, input=subject.eml, capture_output=True,
                              timeout=TIME_LIMIT, check=False)
    except subprocess.TimeoutExpired:
        result.skipped = (f"SpamAssassin took longer than {TIME_LIMIT:g} s, so the spam score "
                          "was not checked: try again later")
        return result
    except OSError as exc:
        result.skipped = (f"SpamAssassin could not be started ({exc.strerror or exc}), so the "
                          "spam score was not checked: run `spamassassin -V` to see why")
        return result
    parsed = parse_report(done.stdout.decode("utf-8", "replace"))
    if parsed is None and command[0] == "spamc":
        result.skipped = (f"the spam checker at {os.environ[SPAMD_ENV]} ({SPAMD_ENV}) did not "
                          "answer, so the spam score was not checked: start spamd there, or "
                          f"unset {SPAMD_ENV} to use spamassassin")
        return result
    if parsed is None:
        result.skipped = "SpamAssassin gave no report (is it set up? try `spamassassin -V`)"
        return result
    score, required, rules = parsed
    result.summary = f"{score:g} points (spam from {required:g})"
    if score >= required:
        result.add("error", f"{score:g} points", "", f"SpamAssassin calls this spam ({score:g} "
                   f"points; spam from {required:g})", "Change what the rules below point at.")
    elif score >= required / 2:
        result.add("warning", f"{score:g} points", "", f"{score:g} points: over half way to "
                   f"spam ({required:g})", "Change what the rules below point at.")
    for rule in rules:
        severity: Severity = "warning" if rule.points >= 1.0 else "info"
        result.add(severity, rule.name, f"{rule.points:+g} points", rule.description,
                   ADVICE.get(rule.name, ""))
    return result
