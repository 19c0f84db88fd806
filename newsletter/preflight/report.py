"""What preflight found: one :class:`CheckResult` per check, each with its findings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["ok", "info", "warning", "error"]
RANK: dict[str, int] = {"ok": 0, "info": 1, "warning": 2, "error": 3}


@dataclass(frozen=True)
class Finding:
    """One thing a check found: how bad, what it concerns, and what to change."""

    severity: Severity
    item: str  # what it concerns: a link, an image, a rule, a client ("" for the whole email)
    field: str  # where: "items[2].url", "footer", "subject", a template line
    message: str
    fix: str = ""

    @property
    def advice(self) -> str:
        """What it found and what to change, as one sentence pair (the CLI's and the panel's)."""
        return self.message + (f". {self.fix}" if self.fix else "")


@dataclass
class CheckResult:
    """One check's findings (none: it passed)."""

    name: str  # "links", "images", "spam", "clients", "accessibility", "size", "domain"
    title: str
    findings: list[Finding] = field(default_factory=list)
    skipped: str = ""  # why the check did not run (offline, a tool missing)
    summary: str = ""  # one line shown when it passed ("24 links, all answer")
    seconds: float = 0.0

    @property
    def headline(self) -> str:
        """The check's line: why it was skipped, or its title and summary."""
        if self.skipped:
            return self.skipped
        return f"{self.title}: {self.summary}" if self.summary else self.title

    @property
    def severity(self) -> Severity:
        """The worst finding's severity ("ok" when there are none)."""
        worst: Severity = "ok"
        for finding in self.findings:
            if RANK[finding.severity] > RANK[worst]:
                worst = finding.severity
        return worst

    def add(self, severity: Severity, item: str, where: str, message: str,
            fix: str = "") -> None:
        """Record one finding."""
        self.findings.append(Finding(severity, item, where, message, fix))


@dataclass
class Report:
    """Every check's result, in the order they are shown."""

    checks: list[CheckResult]
    offline: bool = False
    seconds: float = 0.0

    @property
    def errors(self) -> list[Finding]:
        return [f for c in self.checks for f in c.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for c in self.checks for f in c.findings if f.severity == "warning"]

    def fails(self, level: Literal["error", "warning"] = "error") -> bool:
        """True when anything at or above ``level`` was found."""
        return any(RANK[c.severity] >= RANK[level] for c in self.checks)

    def check(self, name: str) -> CheckResult:
        """The result of the check called ``name``."""
        return next(c for c in self.checks if c.name == name)

    def summary_line(self) -> str:
        """"2 errors, 3 warnings" or "all checks passed"; says if network checks were skipped."""
        errors, warnings = len(self.errors), len(self.warnings)
        found = "all checks passed" if not errors and not warnings \
            else f"{errors} error(s), {warnings} warning(s)"
        if self.offline:
            found += " (links, pictures and sender domain not checked: offline)"
        return found

    def refusal(self) -> str:
        """Why a send is refused: every error, one a line."""
        lines = [f"  {f.item or f.field}: {f.message}" for f in self.errors]
        return f"Preflight found {len(lines)} error(s) in the email:\n" + "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The report as plain data (for --json and the preview panel)."""
        return {
            "offline": self.offline,
            "seconds": round(self.seconds, 3),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "checks": [
                {
                    "name": c.name, "title": c.title, "severity": c.severity,
                    "skipped": c.skipped, "summary": c.summary, "seconds": round(c.seconds, 3),
                    "findings": [asdict(f) for f in c.findings],
                }
                for c in self.checks
            ],
        }
