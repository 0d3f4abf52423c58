"""Validating and decoding uploads: allow-listed formats, bomb checks before pixels, full decodes.

``inspect`` reads only the header (format, size) so the route is chosen and decompression bombs are
rejected before a single pixel is decoded. ``verify`` fully decodes an image that is stored as
uploaded (a JPEG at 1/8 scale: Pillow's ``draft`` decodes every entropy-coded block, so truncation
is still caught, in a third of the time). ``decode`` produces the orientation-corrected pixels the
upscaler needs.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from deployments.contracts import DecodedImage
from deployments.errors import (
    AnimatedImageError,
    CorruptImageError,
    EmptyUploadError,
    NotAnImageError,
    TooManyPixelsError,
    UnsupportedFormatError,
)

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP")
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}

# Formats we can name when refusing them, by their leading bytes.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"BM", 0, "BMP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"%PDF", 0, "PDF"),
    (b"ftypheic", 4, "HEIC"),
    (b"ftypheix", 4, "HEIC"),
    (b"ftypavif", 4, "AVIF"),
    (b"\x00\x00\x01\x00", 0, "ICO"),
    (b"8BPS", 0, "PSD"),
    (b"\xff\x0a", 0, "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", 0, "JPEG XL"),
    (b"<svg", 0, "SVG"),
    (b"<?xml", 0, "SVG/XML"),
)

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated upload is an error, never grey pixels
# Pillow's own bomb check fires at a fixed limit and hides the declared size; ``_open`` checks the
# configured MAX_IMAGE_PIXELS at the same point (after the header, before any pixel is decoded).
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class Probe:
    data: bytes
    format: str
    width: int
    height: int
    # A JPEG's quantisation tables (natural order), read with the header: its quality estimate.
    quantization: dict[int, tuple[int, ...]] | None = None

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


def sniff(data: bytes) -> str | None:
    head = data[:32].lstrip()
    for magic, offset, name in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return name
    return None


def _open(data: bytes, max_pixels: int) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except UnidentifiedImageError:
        name = sniff(data)
        raise (UnsupportedFormatError(name) if name else NotAnImageError()) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise CorruptImageError(str(exc)) from exc
    if image.width * image.height > max_pixels:
        raise TooManyPixelsError((image.width, image.height), max_pixels)
    if getattr(image, "n_frames", 1) > 1:
        raise AnimatedImageError(image.format or "image")
    return image


def inspect(data: bytes, max_pixels: int) -> Probe:
    """Format and size from the header alone; rejects empty, unknown, animated and oversized images."""
    if not data:
        raise EmptyUploadError()
    image = _open(data, max_pixels)
    assert image.format is not None  # set by every allow-listed plugin
    tables = getattr(image, "quantization", None) if image.format == "JPEG" else None
    quantization = {int(k): tuple(int(x) for x in v) for k, v in tables.items()} if tables else None
    return Probe(data, image.format, image.width, image.height, quantization)


def _load(image: Image.Image) -> None:
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptImageError(str(exc)) from exc


def verify(probe: Probe, max_pixels: int) -> Image.Image:
    """Decode the whole image once to prove it is intact (for images stored as uploaded); the decoded
    image (a JPEG's at 1/8 scale) is returned for the quality metrics."""
    image = _open(probe.data, max_pixels)
    if image.format == "JPEG":
        image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
    _load(image)
    return image


def _pixels(image: Image.Image) -> tuple[NDArray[np.uint8], bool]:
    """8-bit pixels in L, RGB or RGBA, and whether the ICC profile still describes them."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits (Pillow's convert("L") clips everything above 255).
        wide = np.asarray(image, dtype=np.float64)
        return np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8), True
    if mode in ("1", "L"):
        return np.asarray(image.convert("L")), True
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in image.info)
    if has_alpha:
        return np.asarray(image.convert("RGBA")), mode != "LA"
    # CMYK is converted naively, so a CMYK ICC profile would no longer match the pixels.
    return np.asarray(image.convert("RGB")), mode not in ("CMYK",)


def decode(probe: Probe, max_pixels: int) -> DecodedImage:
    """Orientation-corrected 8-bit pixels plus the ICC profile and EXIF to carry to the output."""
    image = _open(probe.data, max_pixels)
    _load(image)
    image = ImageOps.exif_transpose(image)  # drops the orientation tag from the EXIF it keeps
    pixels, icc_valid = _pixels(image)
    icc = image.info.get("icc_profile") if icc_valid else None
    exif = image.getexif()
    return DecodedImage(pixels, icc or None, exif.tobytes() if len(exif) else None)


def quality_score(width: int, height: int) -> float:
    """Pixels relative to 4K UHD (3840×2160): 1.0 is 4K, 0.25 is 1080p."""
    return width * height / (3840 * 2160)
