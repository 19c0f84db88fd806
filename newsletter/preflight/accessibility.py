"""Accessibility: contrast in light and dark, lang and dir, headings, link texts, alt texts."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cssselect import SelectorError
from lxml import etree
from lxml.cssselect import CSSSelector

from ..colours import WCAG_AA, contrast
from .message import Subject
from .parse import alt_problem, document, images, line_of, links, style_value, words_of
from .report import CheckResult, Severity

LARGE_TEXT_AA = 3.0  # WCAG 1.4.3: 24 px, or 18.66 px bold, needs only 3:1
RIGHT_TO_LEFT = {"ar", "he", "fa", "ur", "ug", "ps", "sd", "yi", "dv", "ku"}
MEANINGLESS_LINKS = {
    "click here", "here", "read more", "more", "link", "this", "learn more", "this link",
    "continue", "go", "details", "hier", "mehr", "weiterlesen", "klicken sie hier", "ici",
    "en savoir plus", "lire la suite", "→", ">>",
}
_NAMED = {"white": "#ffffff", "black": "#000000", "red": "#ff0000", "gray": "#808080",
          "grey": "#808080", "silver": "#c0c0c0", "blue": "#0000ff", "green": "#008000"}
_DARK_BLOCK = re.compile(r"@media[^{]*prefers-color-scheme\s*:\s*dark[^{]*\{")
_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")


def colour(value: str | None) -> str | None:
    """A CSS colour as #rrggbb (None for transparent, gradients and what is unknown)."""
    if not value:
        return None
    text = value.replace("!important", "").strip().lower()
    text = _NAMED.get(text, text)
    if re.fullmatch(r"#[0-9a-f]{3}", text):
        return "#" + "".join(c * 2 for c in text[1:])
    if re.fullmatch(r"#[0-9a-f]{6}", text):
        return text
    match = re.fullmatch(r"rgba?\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*(?:,\s*([\d.]+)\s*)?\)", text)
    if match and (match.group(4) is None or float(match.group(4)) >= 0.99):
        return "#" + "".join(f"{min(int(match.group(i)), 255):02x}" for i in (1, 2, 3))
    return None


Overrides = dict[etree._Element, dict[str, str]]


def dark_overrides(root: etree._Element) -> Overrides:
    """The colours the email's prefers-color-scheme: dark rules give each element."""
    found: Overrides = {}
    for style in root.iter("style"):
        css = style.text or ""
        for block in _DARK_BLOCK.finditer(css):
            depth, end = 1, block.end()
            while depth and end < len(css):
                depth += {"{": 1, "}": -1}.get(css[end], 0)
                end += 1
            for selectors, body in _RULE.findall(css[block.end():end - 1]):
                declared = {p: v for p in ("color", "background-color")
                            if (v := style_value(body, p)) is not None}
                if not declared:
                    continue
                for selector in selectors.split(","):
                    try:
                        matched = CSSSelector(selector.strip())(root)
                    except (SelectorError, SyntaxError, etree.XPathError):
                        continue
                    for element in matched if isinstance(matched, list) else []:
                        if not isinstance(element, etree._Element):
                            continue
                        found.setdefault(element, {}).update(declared)
    return found


def _own(element: etree._Element, name: str, overrides: Overrides) -> str | None:
    if name in overrides.get(element, {}):
        return overrides[element][name]
    style = element.get("style") or ""
    value = style_value(style, name)
    if value is None and name == "background-color":
        value = style_value(style, "background") or element.get("bgcolor")
    return value


def _hidden(element: etree._Element) -> bool:
    for node in (element, *element.iterancestors()):
        style = (node.get("style") or "").replace(" ", "").lower()
        if "display:none" in style or "max-height:0" in style or "opacity:0;" in style + ";" \
                or "width:1px" in style:
            return True
    return False


@dataclass(frozen=True)
class Pair:
    foreground: str
    background: str
    ratio: float
    needed: float
    sample: str
    line: int


def contrast_pairs(root: etree._Element, overrides: Overrides, page: str) -> list[Pair]:
    """Each distinct text-on-background pair below its WCAG AA ratio."""
    failing: dict[tuple[str, str], Pair] = {}
    for element in root.iter():
        if not isinstance(element.tag, str) or element.tag in ("style", "script", "head",
                                                                "title", "meta"):
            continue
        words = (element.text or "").strip()
        if not words or _hidden(element):
            continue
        chain = (element, *element.iterancestors())
        fg = next((c for n in chain if (c := colour(_own(n, "color", overrides)))), "#000000")
        bg = next((c for n in chain if (c := colour(_own(n, "background-color", overrides)))),
                  page)
        size = next((v for n in chain if (v := style_value(n.get("style") or "", "font-size"))),
                    "16px")
        weight = next((v for n in chain
                       if (v := style_value(n.get("style") or "", "font-weight"))), "400")
        pixels = float(re.sub(r"[^\d.]", "", size) or 16)
        bold = weight in ("bold", "bolder") or weight.isdigit() and int(weight) >= 700
        large = pixels >= 24 or (bold and pixels >= 18.66) or element.tag in ("h1",)
        needed = LARGE_TEXT_AA if large else WCAG_AA
        ratio = contrast(fg, bg)
        if ratio < needed and (fg, bg) not in failing:
            failing[(fg, bg)] = Pair(fg, bg, ratio, needed, words[:40], line_of(element))
    return list(failing.values())


def check_accessibility(subject: Subject) -> CheckResult:
    """What screen-reader users and readers with low vision would stumble over."""
    result = CheckResult("accessibility", "Accessibility")
    root = document(subject.html)
    for mode, overrides, page, severity in (
        ("light", {}, "#ffffff", "error"), ("dark", dark_overrides(root), "#121417", "warning"),
    ):
        if mode == "dark" and not overrides:
            continue  # no dark palette: clients invert the colours themselves
        for pair in contrast_pairs(root, overrides, page):
            level: Severity = "error" if severity == "error" else "warning"
            result.add(level, f"“{pair.sample}”", f"HTML line {pair.line} ({mode} mode)",
                       f"{pair.foreground} on {pair.background}: contrast {pair.ratio:.1f}:1, "
                       f"needs {pair.needed:g}:1 (WCAG AA)",
                       "Darken the text or lighten the background (in the template or "
                       "[brand] in newsletter.toml).")
    html_element = root if root.tag == "html" else root.getroottree().getroot()
    language = (html_element.get("lang") or "").strip()
    if not language:
        result.add("error", "<html>", "lang", "no lang attribute: screen readers guess the "
                   "language and mispronounce every word",
                   "Set language in newsletter.toml; templates use it in <mjml lang=...>.")
    direction = (html_element.get("dir") or "").strip().lower()
    rtl = language.split("-")[0].lower() in RIGHT_TO_LEFT
    if rtl and direction != "rtl":
        result.add("error", "<html>", "dir", f"the language {language!r} is written right to "
                   "left, but the email has no dir=\"rtl\"", "Add dir=\"rtl\" to the template.")
    elif not direction:
        result.add("info", "<html>", "dir", "no dir attribute (left to right is assumed)",
                   "Add dir=\"ltr\" to the template's <mjml> tag if you like.")
    before = 0
    for heading in root.iter("h1", "h2", "h3", "h4", "h5", "h6"):
        rank = int(str(heading.tag)[1])
        if rank > before + 1:
            text = words_of(heading)[:40]
            result.add("warning", f"<{heading.tag}> “{text}”", f"HTML line {line_of(heading)}",
                       f"heading level {rank} follows level {before or 'none'}: screen "
                       "reader users lose their place", "Use headings in order (h1, h2, h3).")
        before = rank
    for link in links(root):
        cleaned = link.text.strip().strip("→»>.:").strip().lower()
        if not link.text.strip():
            result.add("error", link.href, f"HTML line {link.line}", "the link has no text",
                       "Give it words, or an alt text to its picture.")
        elif cleaned in MEANINGLESS_LINKS:
            result.add("warning", link.href, f"HTML line {link.line}",
                       f"the link text “{link.text}” means nothing out of context",
                       "Say where it leads: “Read the report on forced labour”.")
    for image in images(root):
        problem = alt_problem(image.alt)
        if problem:
            result.add("error" if image.alt is None else "warning", image.src,
                       subject.where(image.src), problem,
                       "Describe what the picture shows in image_alt (a short sentence).")
    result.findings = list(dict.fromkeys(result.findings))
    result.summary = "contrast (light and dark), lang, headings, link texts and alt texts"
    return result
