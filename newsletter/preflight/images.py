"""Images: each picture is fetched and measured (https, real type, bytes, pixels, alt text)."""

from __future__ import annotations

import asyncio
import io
import warnings

from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from .fetch import Answer, Fetcher
from .message import Subject
from .parse import Image, document, images
from .report import CheckResult

WARN_BYTES = 200 * 1024
ERROR_BYTES = 1024 * 1024
BLURRY_BELOW = 2.0  # pixels per displayed pixel: phones show 2 or 3 per CSS pixel
WASTEFUL_ABOVE = 4.0
# What every mail program shows. WebP is missing in Outlook for Windows; others in many.
EMAIL_FORMATS = {"JPEG": "JPEG", "PNG": "PNG", "GIF": "GIF"}
def _where(subject: Subject, image: Image) -> str:
    where = subject.where(image.src)
    logo = subject.project.config.brand.logo_url
    if where == "template or newsletter.toml" and image.src == logo:
        return "newsletter.toml: [brand] logo_url"
    return where


def _judge(result: CheckResult, subject: Subject, image: Image, answer: Answer) -> None:
    where = _where(subject, image)
    item = image.src
    if answer.error or answer.status >= 400:
        problem = answer.error or f"answers {answer.status}"
        result.add("error", item, where, f"the picture cannot be loaded: {problem}",
                   "Check the address in a browser; upload the picture again if needed.")
        return
    data = answer.body
    size = len(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # decompression-bomb warnings for huge pictures
            picture = PILImage.open(io.BytesIO(data))
            kind, width = picture.format or "", picture.size[0]
    except (UnidentifiedImageError, OSError, ValueError):
        result.add("error", item, where,
                   f"is not a picture (the server sent {answer.content_type or 'no type'})",
                   "Link the picture file itself (ending .jpg or .png), not a web page.")
        return
    if kind not in EMAIL_FORMATS:
        result.add("warning", item, where,
                   f"is a {kind} picture, which some mail programs (Outlook) do not show",
                   "Save it as JPEG (photos) or PNG (drawings, logos).")
    if size > ERROR_BYTES:
        result.add("error", item, where, f"is {size / 1024 / 1024:.1f} MB: slow on phones and "
                   "a burden on readers' data", "Resize it to at most 1200 px wide and save as "
                   "JPEG at quality 80 (under 200 KB).")
    elif size > WARN_BYTES:
        result.add("warning", item, where, f"is {size / 1024:.0f} KB (over 200 KB)",
                   "Save it smaller: 1200 px wide, JPEG quality 80.")
    if image.width:
        ratio = width / image.width
        if ratio < BLURRY_BELOW:
            result.add("warning", item, where,
                       f"is {width} px wide but shown {image.width} px wide: blurry on phones "
                       "(they need twice as many pixels)",
                       f"Use a picture at least {image.width * 2} px wide.")
        elif ratio > WASTEFUL_ABOVE:
            result.add("warning", item, where,
                       f"is {width} px wide but shown {image.width} px wide: wastes readers' "
                       "data", f"Resize it to {image.width * 2} px wide.")


async def check_images(subject: Subject, fetcher: Fetcher) -> CheckResult:
    """Fetch every picture and report what readers would suffer from."""
    result = CheckResult("images", "Images")
    found = images(document(subject.html))
    distinct: dict[str, Image] = {}
    for image in found:
        distinct.setdefault(image.src, image)
        if image.src.startswith("http://"):
            result.add("error", image.src, _where(subject, image),
                       "is not https: Gmail and others block or warn about it",
                       "Use the https:// address of the picture.")
    fetchable = [i for i in distinct.values() if i.src.startswith(("http://", "https://"))]
    answers = await asyncio.gather(*(fetcher.fetch(i.src, body=True) for i in fetchable))
    if answers and all(a.unreachable for a in answers):
        result.add("warning", "", "", "no picture could be reached: this machine seems to have "
                   "no network, so pictures were not checked",
                   "Run `newsletter preflight` again when online.")
        return result
    for image, answer in zip(fetchable, answers, strict=True):
        _judge(result, subject, image, answer)
    result.summary = f"{len(distinct)} pictures"
    return result
