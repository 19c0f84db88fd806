"""Email-client support: the final HTML and CSS against caniemail's published data.

The data is caniemail's own JSON (the ``caniemail`` npm package, installed by
``npm install --prefix bench``), read as published: nothing is retyped here. Only
what the templates wrote is reported, with its template line; what MJML itself
generates comes with MJML's own fallbacks for each client.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .message import Subject
from .report import CheckResult, Severity

DATA_ENV = "NEWSLETTER_CANIEMAIL_JSON"
DATA_IN_BENCH = Path("bench") / "node_modules" / "caniemail" / "data" / "caniemail.json"
_REPO = Path(__file__).resolve().parents[2]
CLIENTS = (
    ("gmail", "desktop-webmail", "Gmail (web)"),
    ("gmail", "ios", "Gmail (iOS)"),
    ("gmail", "android", "Gmail (Android)"),
    ("outlook", "windows", "Outlook (Windows)"),
    ("outlook", "macos", "Outlook (macOS)"),
    ("outlook", "outlook-com", "Outlook (web)"),
    ("apple-mail", "ios", "Apple Mail (iOS)"),
    ("apple-mail", "macos", "Apple Mail (macOS)"),
    ("yahoo", "desktop-webmail", "Yahoo Mail"),
)
ERROR_FROM = 3  # unsupported in this many of the clients: the design breaks for many readers
# Features that only add to the design where they work, and are ignored elsewhere.
ENHANCEMENTS = {
    "css-at-media", "css-at-media-prefers-color-scheme", "css-at-media-prefers-reduced-motion",
    "css-at-media-hover", "css-at-media-orientation", "css-at-media-device-pixel-ratio",
    "css-important", "css-color-scheme", "html-meta-color-scheme", "css-pseudo-class-hover",
    "css-pseudo-class-focus", "css-pseudo-class-active", "css-pseudo-class-visited",
    "css-text-decoration-skip-ink", "css-text-underline-offset", "css-overflow-wrap",
    "css-word-break", "css-hyphens", "css-sytem-ui",
}
_SPECIAL = {
    "css-display-flex": r"display\s*:\s*(?:inline-)?flex\b",
    "css-display-grid": r"display\s*:\s*(?:inline-)?grid\b",
    "css-display-none": r"display\s*:\s*none\b",
    "css-at-media-prefers-color-scheme": r"prefers-color-scheme",
    "css-at-media-prefers-reduced-motion": r"prefers-reduced-motion",
    "css-important": r"!important",
    "css-variables": r"var\(\s*--",
    "css-unit-calc": r"calc\((?<!\wcalc\()",
    "css-linear-gradient": r"linear-gradient\(",
    "css-radial-gradient": r"radial-gradient\(",
    "css-conic-gradient": r"conic-gradient\(",
    "css-function-clamp": r"clamp\((?<!\wclamp\()",
    "css-function-min": r"min\((?<!\wmin\()",
    "css-function-max": r"max\((?<!\wmax\()",
    "css-function-light-dark": r"light-dark\((?<!\wlight-dark\()",
    "css-left-right-top-bottom": r"(?:top(?<![\w-]top)|left(?<![\w-]left)|"
    r"right(?<![\w-]right)|bottom(?<![\w-]bottom))\s*:",
    "css-grid-template": r"grid-template(?:-\w+)?\s*:",
    "css-sytem-ui": r"system-ui(?<!\wsystem-ui)\b",
    "html-srcset": r"srcset=(?<!\wsrcset=)",
    "html-loading-attribute": r"loading=(?<!\wloading=)",
}
_TAGS = {"audio", "video", "svg", "form", "picture", "marquee", "object", "dialog", "progress",
         "meter", "select", "textarea", "button-reset", "button-submit", "base", "ruby", "wbr"}
_SKIP = ("css-selector-", "css-unit-", "css-comments", "css-modern-color", "css-nesting",
         "css-rgb", "css-display", "html-", "image-", "amp", "bimi")
_DECLARED = r'(?:\s*:|=")'  # in CSS (name:) or as an MJML attribute (name="...")
# Every pattern starts with its literal text and checks what comes before it with a
# lookbehind after it: re then jumps from one occurrence of the text to the next. Led
# by the lookbehind, each pattern tried every position, 1.2 ms a pattern on the sample.
_MSO = re.compile(r"<!--\[if [^\]]*mso[^\]]*\]>.*?<!\[endif\]-->", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class Feature:
    slug: str
    title: str
    url: str
    source: str  # the pattern, matched against the lower-cased HTML
    needle: str  # a piece of text every match contains (a quick test before the pattern)
    unsupported: tuple[str, ...]  # client names
    partial: tuple[str, ...]

    @property
    def pattern(self) -> re.Pattern[str]:
        """The compiled pattern (compiled on first use: most features' needle never occurs)."""
        return _compiled(self.source)


@lru_cache(maxsize=1024)
def _compiled(source: str) -> re.Pattern[str]:
    return re.compile(source)


def data_file(project_root: Path | None = None) -> Path | None:
    """caniemail.json: NEWSLETTER_CANIEMAIL_JSON, else bench/node_modules (repo or project)."""
    candidates = [Path(os.environ[DATA_ENV])] if os.environ.get(DATA_ENV) else []
    candidates.append(_REPO / DATA_IN_BENCH)
    if project_root is not None:
        candidates.append(project_root / DATA_IN_BENCH)
    return next((path for path in candidates if path.is_file()), None)


def _pattern(slug: str) -> str | None:
    if slug in _SPECIAL:
        return _SPECIAL[slug]
    if slug.startswith("html-") and slug[5:] in _TAGS:
        return rf"<{slug[5:].split('-')[0]}\b"
    if slug.startswith("css-at-") and "media-" not in slug:
        return rf"@{slug[7:]}\b"
    if slug == "css-at-media":
        return r"@media\b"
    if slug.startswith("css-pseudo-class-"):
        return rf":{slug[17:]}(?<!::{slug[17:]})\b(?!\s*[;\"'])"
    if slug.startswith("css-pseudo-element-"):
        return rf"::?{slug[19:]}\b(?!\s*[;\"'])"
    if slug.startswith(_SKIP) or not slug.startswith("css-"):
        return None
    # A CSS property, in CSS (name:) or as an MJML attribute (name="...").
    return rf"{slug[4:]}(?<![\w-]{slug[4:]}){_DECLARED}"


def _needle(pattern: str) -> str:
    pattern = pattern.replace(_DECLARED, "")
    if "|" in pattern:
        return ""
    plain = re.sub(r"\(\?<?[!=][^)]*\)|\\[a-z]|\[[^]]*\]", " ", pattern)
    return max(re.findall(r"[a-z0-9-]+", plain), key=len, default="")


def _support(stats: dict[str, Any], family: str, platform: str) -> str:
    versions = (stats.get(family) or {}).get(platform) or {}
    if not versions:
        return "u"
    return str(list(versions.values())[-1])[:1]


@lru_cache(maxsize=2)
def load_features(path: Path) -> tuple[tuple[Feature, ...], str]:
    """The features preflight can detect, with the clients lacking them; and the data date."""
    data = json.loads(path.read_text(encoding="utf-8"))
    features: list[Feature] = []
    for entry in data["data"]:
        pattern = _pattern(entry["slug"])
        if pattern is None:
            continue
        support = {name: _support(entry["stats"], family, platform)
                   for family, platform, name in CLIENTS}
        unsupported = tuple(name for name, value in support.items() if value == "n")
        partial = tuple(name for name, value in support.items() if value == "a")
        if unsupported:  # partial support is the norm for CSS in email: not listed
            features.append(Feature(entry["slug"], entry["title"], entry["url"],
                                    pattern, _needle(pattern), unsupported, partial))
    return tuple(features), str(data.get("last_update_date", ""))[:10]


def _media_ranges(text: str) -> list[tuple[int, int]]:
    """Where the @media blocks are (start, end) in ``text``."""
    ranges = []
    for match in re.finditer(r"@media\b[^{]*\{", text):
        depth, index = 1, match.end()
        while depth and index < len(text):
            depth += {"{": 1, "}": -1}.get(text[index], 0)
            index += 1
        ranges.append((match.start(), index))
    return ranges


def _line(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _blank(match: re.Match[str]) -> str:
    return re.sub(r"[^\n]", " ", match.group(0))


def email_templates(subject: Subject) -> list[tuple[str, str]]:
    """(name, text without Jinja comments) of the templates the HTML part is made from."""
    found = []
    for path in subject.template_files():
        if path.name == "email.mjml.j2" or path.parent.name == "partials":
            text = path.read_text(encoding="utf-8").lower()
            text = re.sub(r"\{#.*?#\}", _blank, text, flags=re.DOTALL)
            found.append((path.name, text))
    return found


def _template_lines(templates: list[tuple[str, str]], feature: Feature) -> list[str]:
    return [f"{name}:{_line(text, match.start())}" for name, text in templates
            for match in feature.pattern.finditer(text)]


def check_clients(subject: Subject) -> CheckResult:
    """Report the features the templates use that the main mail programs lack."""
    result = CheckResult("clients", "Email-client support (caniemail)")
    path = data_file(subject.project.root)
    if path is None:
        result.skipped = ("caniemail's data is not installed, so client support was not "
                          "checked (run: npm install --prefix bench)")
        return result
    features, updated = load_features(path)
    html = _MSO.sub(_blank, subject.html).lower()  # Outlook-only code written for Outlook
    media = _media_ranges(html)
    from_mjml = 0
    templates = email_templates(subject)
    for feature in features:
        if feature.needle not in html:
            continue
        matches = list(feature.pattern.finditer(html))
        if not matches:
            continue
        sources = _template_lines(templates, feature)
        if not sources:
            from_mjml += 1
            continue
        first = matches[0].start()
        only_in_media = all(any(a <= m.start() < b for a, b in media) for m in matches)
        severity: Severity
        if feature.slug in ENHANCEMENTS or only_in_media:
            severity = "info"
        elif len(feature.unsupported) >= ERROR_FROM:
            severity = "error"
        elif feature.unsupported:
            severity = "warning"
        else:
            severity = "info"
        lacking = ", ".join(feature.unsupported)
        partly = f"; partly in {', '.join(feature.partial)}" if feature.partial else ""
        shown = ", ".join(sources[:3]) + (f" and {len(sources) - 3} more" if len(sources) > 3
                                          else "")
        result.add(severity, feature.title, f"{shown} (HTML line {_line(html, first)})",
                   f"not supported in {lacking}{partly}",
                   "Only an enhancement: fine where it is ignored." if severity == "info"
                   else f"Use a table layout or a plainer style instead; see {feature.url}")
    result.summary = (f"checked against caniemail data of {updated}; {from_mjml} feature(s) "
                      "from MJML's own code (with its fallbacks) not listed")
    return result
