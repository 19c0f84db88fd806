"""Reading the final HTML: links, images, styles, each with its line in the HTML."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import lxml.html
from lxml import etree

_URL_IN_TEXT = re.compile(r"https?://[^\s<>()\"']+[^\s<>()\"'.,;:!?]")


@dataclass(frozen=True)
class Link:
    href: str
    text: str
    line: int
    has_words: bool = True  # False for a linked picture


@dataclass(frozen=True)
class Image:
    src: str
    alt: str | None
    width: int | None  # displayed width in CSS pixels, when the HTML says
    line: int


def line_of(element: etree._Element) -> int:
    """The element's line in the HTML (0 when unknown)."""
    line = getattr(element, "sourceline", None)
    return line if isinstance(line, int) else 0


def words_of(element: etree._Element) -> str:
    """The element's text, its children's included, with spaces collapsed."""
    return " ".join("".join(str(part) for part in element.itertext()).split())


def document(html: str) -> etree._Element:
    """The parsed HTML (lxml)."""
    return lxml.html.document_fromstring(html.encode("utf-8"))


def links(root: etree._Element) -> list[Link]:
    """Every <a href> that leads somewhere (http, https), in document order."""
    found: list[Link] = []
    for element in root.iter("a"):
        href = (element.get("href") or "").strip()
        if href.startswith(("http://", "https://")):
            text = words_of(element)
            words = bool(text)
            if not text:  # a linked picture: its alt text is the link text
                text = " ".join(img.get("alt") or "" for img in element.iter("img")).strip()
            found.append(Link(href, text, line_of(element), words))
    return found


def text_links(text: str) -> list[str]:
    """Every web address in the plain-text part."""
    return _URL_IN_TEXT.findall(text)


def _pixels(value: str | None) -> int | None:
    if not value:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(px)?\s*", value)
    return round(float(match.group(1))) if match else None


def style_value(style: str, name: str) -> str | None:
    """The value of one property in an inline style (the last one wins)."""
    return _declarations(style).get(name)


@lru_cache(maxsize=4096)
def _declarations(style: str) -> dict[str, str]:
    # Cached: the accessibility check asks about 3,000 times per email, of a few
    # hundred distinct styles (premailer repeats them on every element).
    found: dict[str, str] = {}
    for declaration in style.split(";"):
        key, _, value = declaration.partition(":")
        found[key.strip().lower()] = value.replace("!important", "").strip()
    return found


def images(root: etree._Element) -> list[Image]:
    """Every <img>, with its alt text and displayed width."""
    found: list[Image] = []
    for element in root.iter("img"):
        src = (element.get("src") or "").strip()
        if not src:
            continue
        width = _pixels(element.get("width")) or _pixels(
            style_value(element.get("style") or "", "width"))
        found.append(Image(src, element.get("alt"), width, line_of(element)))
    return found


_FILE_NAME = re.compile(
    r"^[\w.-]*\.(jpe?g|png|gif|webp|avif|svg|bmp|tiff?)$|^(img|dsc|image)[_-]?\d+", re.IGNORECASE)
MEANINGLESS_ALT = {"image", "picture", "photo", "img", "logo", "bild", "foto", "graphic"}


def alt_problem(alt: str | None) -> str:
    """Why an alt text does not describe the picture ("" when it is fine)."""
    if alt is None:
        return "has no alt text: screen readers say the file name, and blocked images show nothing"
    text = alt.strip()
    if not text:
        return ""  # alt="" marks a decorative picture on purpose
    if _FILE_NAME.search(text):
        return f"the alt text {text!r} is a file name, not a description"
    if text.lower() in MEANINGLESS_ALT:
        return f"the alt text {text!r} says nothing about the picture"
    return ""
