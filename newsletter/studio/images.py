"""Pictures uploaded for items: checked to really be images, resized, stripped of
EXIF (including location), named by their content, kept in the project's media/.

`archive build` publishes media/ with the site; the item's ``image`` is the
picture's https address there (under ``web_url``).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from ..config import Config
from ..errors import NewsletterError
from ..files import atomic_write
from ..project import Project

MEDIA_PATH = "media"
MAX_BYTES = 10 * 1024 * 1024
# The email is 600 px wide; pictures are stored at twice that for sharp high-density screens.
DISPLAY_WIDTH = 600
MAX_PIXELS = 40_000_000  # refuse decompression bombs before decoding
FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif"}


@dataclass(frozen=True)
class StoredImage:
    """A picture stored under media/."""

    path: Path
    url: str  # its public https address, for the item's image field
    width: int
    height: int


def media_base(config: Config) -> str:
    """Where published pictures live: web_url + /media/."""
    return f"{config.service_url}/{MEDIA_PATH}/"


def media_dir(project: Project) -> Path:
    """The project's folder of uploaded pictures."""
    return project.root / MEDIA_PATH


def _refuse(message: str) -> NewsletterError:
    return NewsletterError(message, hint="Choose a JPEG, PNG, WebP or GIF photo of at most 10 MB.")


def check_filename(filename: str) -> None:
    """Refuse names that try to reach other folders. The name is never used to store."""
    if "/" in filename or "\\" in filename or ".." in filename or "\x00" in filename:
        raise _refuse(f"The file name {filename!r} is not allowed.")


def store_image(project: Project, data: bytes, filename: str = "") -> StoredImage:
    """Check, resize and store an uploaded picture; NewsletterError if it is refused.

    What the file really is decides, not its name: SVG, HTML and anything else that
    is not a JPEG, PNG, WebP or GIF picture is refused.
    """
    check_filename(filename)
    if len(data) > MAX_BYTES:
        raise _refuse(f"{filename or 'The file'} is {len(data) / 1e6:.0f} MB; at most 10 MB.")
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as probe:
            kind = probe.format or ""
            probe.verify()
        image: Image.Image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError):
        raise _refuse(f"{filename or 'The file'} is not a picture the studio can use.") from None
    if kind not in FORMATS:
        raise _refuse(f"{filename or 'The file'} is a {kind or 'unknown'} file, not a photo.")
    animated = getattr(image, "is_animated", False)
    if not animated:
        image = ImageOps.exif_transpose(image) or image  # turn it as the camera held it
        if image.width > 2 * DISPLAY_WIDTH:
            height = round(image.height * 2 * DISPLAY_WIDTH / image.width)
            image = image.resize((2 * DISPLAY_WIDTH, max(height, 1)), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    # Saved without exif=, icc stays: Pillow then writes no EXIF (no location, no camera).
    options: dict[str, object] = {"icc_profile": image.info.get("icc_profile")}
    if kind == "JPEG":
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        options.update(quality=85, optimize=True, progressive=True)
    elif kind == "GIF" and animated:
        options.update(save_all=True)
    image.save(out, format=kind, **{k: v for k, v in options.items() if v is not None})
    stored = out.getvalue()
    name = hashlib.sha256(stored).hexdigest()[:20] + FORMATS[kind]
    target = media_dir(project) / name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, stored)
    return StoredImage(target, media_base(project.config) + name, image.width, image.height)


def media_file(project: Project, name: str) -> Path | None:
    """The stored picture called ``name``, or None (names are content hashes only)."""
    stem, dot, suffix = name.partition(".")
    if not (dot and stem.isalnum() and f".{suffix}" in FORMATS.values()):
        return None
    path = media_dir(project) / name
    return path if path.is_file() else None
