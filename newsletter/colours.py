"""Colours of the email's dark palette: WCAG luminance and contrast, and a brand colour
made readable on a dark background."""

from __future__ import annotations

from functools import lru_cache

WCAG_AA = 4.5  # normal-size text (WCAG 2.x, 1.4.3)


def _rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _channel(value: int) -> float:
    scaled = value / 255
    return scaled / 12.92 if scaled <= 0.04045 else ((scaled + 0.055) / 1.055) ** 2.4


def luminance(colour: str) -> float:
    """Relative luminance of a #rrggbb colour (WCAG 2.x)."""
    red, green, blue = (_channel(part) for part in _rgb(colour))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two #rrggbb colours, from 1 to 21."""
    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def mix(colour: str, other: str, amount: float) -> str:
    """``colour`` moved ``amount`` (0 to 1) of the way towards ``other``."""
    mixed = (round(a + (b - a) * amount) for a, b in zip(_rgb(colour), _rgb(other), strict=True))
    return "#" + "".join(f"{part:02x}" for part in mixed)


@lru_cache(maxsize=64)
def readable_on(colour: str, background: str, ratio: float = WCAG_AA) -> str:
    """``colour``, lightened towards white just enough to reach ``ratio`` on a dark
    ``background`` (so a brand's dark blue stays blue, not black-on-black)."""
    for step in range(21):
        candidate = mix(colour, "#ffffff", step / 20)
        if contrast(candidate, background) >= ratio:
            return candidate
    return "#ffffff"
