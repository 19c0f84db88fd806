"""Sender domain: SPF, DKIM and DMARC in the From domain's DNS (Gmail and Yahoo require them).

The resolver is the system's, or the one named by NEWSLETTER_DNS_SERVER
("127.0.0.1:5353"), which the tests point at a DNS server of their own.
"""

from __future__ import annotations

import os

import dns.exception
import dns.name
import dns.resolver

from .message import Subject
from .report import CheckResult, Severity

DNS_SERVER_ENV = "NEWSLETTER_DNS_SERVER"
# Overrides [sender] dkim_selector (for tests); both comma-separated. Default: SendGrid's.
DKIM_SELECTOR_ENV = "NEWSLETTER_DKIM_SELECTOR"
SENDGRID_SELECTORS = ("s1", "s2")
SENDGRID_SPF = "include:sendgrid.net"
LIFETIME = 4.0


class _Unreadable(Exception):
    """DNS did not answer (no network, or a broken server)."""


def resolver() -> dns.resolver.Resolver:
    """The system resolver, or NEWSLETTER_DNS_SERVER's."""
    server = os.environ.get(DNS_SERVER_ENV, "")
    if server:
        chosen = dns.resolver.Resolver(configure=False)
        host, _, port = server.rpartition(":") if ":" in server else (server, "", "53")
        chosen.nameservers = [host]
        chosen.port = int(port or 53)
    else:
        chosen = dns.resolver.Resolver()
    chosen.lifetime = LIFETIME
    return chosen


def _lookup(res: dns.resolver.Resolver, name: str, kind: str) -> list[str]:
    """The records of ``kind`` at ``name`` as text ([] when there are none)."""
    try:
        answer = res.resolve(name, kind)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        raise _Unreadable(str(exc)) from None
    if kind == "TXT":
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]
    return [r.to_text().rstrip(".") for r in answer]


def organisational(domain: str) -> str:
    """example.org for news.example.org (the last two labels; good enough for DMARC's
    fallback lookup on the domains newsletters send from)."""
    return ".".join(domain.split(".")[-2:])


def _tags(record: str) -> dict[str, str]:
    return {k.strip().lower(): v.strip() for k, _, v in
            (part.partition("=") for part in record.split(";")) if k.strip()}


def check_domain(subject: Subject) -> CheckResult:
    """SPF covering SendGrid, DKIM selectors and an aligned DMARC record for the From domain."""
    result = CheckResult("domain", "Sender domain (SPF, DKIM, DMARC)")
    config = subject.project.config
    domain = config.sender.from_email.rpartition("@")[2].lower()
    # With the outbox nothing is delivered: the records matter once you send for real.
    sending = config.delivery.transport == "sendgrid"
    serious: Severity = "error" if sending else "warning"
    try:
        res = resolver()
    except ValueError:
        result.skipped = (f"{DNS_SERVER_ENV} is {os.environ.get(DNS_SERVER_ENV, '')!r}, not an "
                          "IP address and port (like 127.0.0.1:53), so the sender domain was "
                          f"not checked: correct it, or unset {DNS_SERVER_ENV}")
        return result
    try:
        exists = any(_lookup(res, domain, kind) for kind in ("SOA", "NS", "MX", "A", "TXT"))
        if not exists:
            result.add("warning", domain, "[sender] from_email",
                       f"{domain} has no DNS records at all (or DNS cannot be reached), so "
                       "SPF, DKIM and DMARC were not checked",
                       "Check the From address in newsletter.toml; run again when online.")
            return result
        _spf(result, domain, _lookup(res, domain, "TXT"), serious)
        dkim = _dkim(result, res, domain, selectors(config.sender.dkim_selector), serious)
        _dmarc(result, res, domain, dkim, serious)
    except _Unreadable as exc:
        result.findings = []
        result.add("warning", domain, "", f"DNS did not answer ({exc}); the domain was not "
                   "checked", "Run `newsletter preflight` again when online.")
        return result
    result.summary = f"{domain}: SPF, DKIM and DMARC in place"
    return result


def _spf(result: CheckResult, domain: str, txt: list[str], serious: Severity) -> None:
    records = [r for r in txt if r.lower().startswith("v=spf1")]
    if not records:
        result.add(serious, domain, "SPF", "there is no SPF record",
                   f'Add a TXT record at {domain}: "v=spf1 {SENDGRID_SPF} ~all"')
    elif len(records) > 1:
        result.add(serious, domain, "SPF", f"there are {len(records)} SPF records; receivers "
                   "ignore them all", "Merge them into one TXT record starting v=spf1.")
    elif SENDGRID_SPF not in records[0].lower().split():
        rest = records[0][len("v=spf1"):].strip()
        result.add("warning", domain, "SPF", f"the SPF record {records[0]!r} does not cover "
                   "SendGrid", f'Change the TXT record at {domain} to: "v=spf1 {SENDGRID_SPF} '
                   f'{rest}"')


def selectors(configured: str) -> list[str]:
    """The DKIM selectors to look up: NEWSLETTER_DKIM_SELECTOR's, else ``configured``
    ([sender] dkim_selector), else SendGrid's s1 and s2."""
    for source in (os.environ.get(DKIM_SELECTOR_ENV, ""), configured):
        chosen = [s.strip() for s in source.split(",") if s.strip()]
        if chosen:
            return chosen
    return list(SENDGRID_SELECTORS)


def _dkim(result: CheckResult, res: dns.resolver.Resolver, domain: str, chosen: list[str],
          serious: Severity) -> bool:
    missing = []
    for selector in chosen:
        name = f"{selector}._domainkey.{domain}"
        if not (_lookup(res, name, "CNAME") or any("p=" in t for t in _lookup(res, name, "TXT"))):
            missing.append(name)
    if missing:
        result.add(serious, domain, "DKIM", f"no DKIM key at {', '.join(missing)}",
                   "In SendGrid: Settings → Sender Authentication → Authenticate Your Domain; "
                   + "; ".join(f"add the CNAME record {name} → {name.split('.')[0]}.domainkey."
                               "uNNNN.wl.sendgrid.net (SendGrid shows your account's uNNNN)"
                               for name in missing)
                   + ("" if chosen == list(SENDGRID_SELECTORS) else
                      ". If the selector is wrong, correct dkim_selector in [sender] of "
                      "newsletter.toml"))
    return not missing


def _dmarc(result: CheckResult, res: dns.resolver.Resolver, domain: str, dkim: bool,
           serious: Severity) -> None:
    found = [r for r in _lookup(res, f"_dmarc.{domain}", "TXT") if r.lower().startswith("v=dmarc1")]
    parent = organisational(domain)
    if not found and parent != domain:
        found = [r for r in _lookup(res, f"_dmarc.{parent}", "TXT")
                 if r.lower().startswith("v=dmarc1")]
    if not found:
        result.add(serious, domain, "DMARC", "there is no DMARC record; Gmail and Yahoo refuse "
                   "bulk email without one",
                   f'Add a TXT record at _dmarc.{domain}: "v=DMARC1; p=none; '
                   f'rua=mailto:dmarc@{domain}"')
        return
    tags = _tags(found[0])
    if not dkim:
        result.add(serious, domain, "DMARC", "DMARC is there, but without DKIM for the From "
                   "domain the messages are not aligned and fail it",
                   "Add the DKIM records above; SendGrid then signs as your domain.")
    elif tags.get("adkim", "r").lower() == "s" and found and parent != domain:
        result.add("warning", domain, "DMARC", "strict DKIM alignment (adkim=s) on the parent "
                   "domain", f"Use adkim=r in _dmarc.{parent}, or add _dmarc.{domain}.")
