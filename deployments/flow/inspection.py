"""Validating and decoding uploads: allow-listed formats, bomb checks before pixels, full decodes.

``inspect`` reads only the header (format, size, a JPEG's scan count) so the route is chosen and
decompression bombs are rejected before a single pixel is decoded. ``verify`` fully decodes an image that is stored as
uploaded (a JPEG at 1/8 scale: Pillow's ``draft`` decodes every entropy-coded block, so truncation
is still caught, in a third of the time). ``decode`` produces the orientation-corrected pixels the
upscaler needs.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from configs import formats
from deployments.contracts.errors import (
    AnimatedImageError,
    CorruptImageError,
    EmptyUploadError,
    NotAnImageError,
    TooManyPixelsError,
    TooManyScansError,
    UnsupportedFormatError,
)
from deployments.contracts.values import DecodedImage

ALLOWED_FORMATS = tuple(sorted(f.pillow for f in formats.FORMATS))  # the plugins Pillow may try
_FORMAT_OF = {"MPO": "JPEG"}  # Pillow's JPEG plugin opens multi-picture JPEGs as MPO
# libjpeg's progressive scripts write 10 scans for colour (6·components + 4 for others: 28 for CMYK);
# mozjpeg's scan optimisation chooses among at most 64. Nothing real writes more.
MAX_JPEG_SCANS = 100

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
        return formats.by_pillow(self.format).extension

    @property
    def content_type(self) -> str:
        return formats.by_pillow(self.format).media_type


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
    if getattr(image, "n_frames", 1) > 1 and image.format != "MPO":  # an MPO decodes its first picture
        raise AnimatedImageError(image.format or "image")
    return image


# Markers that stand alone (no length field): TEM, RSTn, SOI, EOI.
_STANDALONE = {0x01, *range(0xD0, 0xD8), 0xD8, 0xD9}
# The next marker after entropy-coded data: 0xFF followed by anything but stuffing (00), RSTn or fill.
_NEXT_MARKER = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")


def jpeg_scans(data: bytes, stop_after: int) -> int:
    """How many scans (SOS segments) the first image of a JPEG holds, counted up to ``stop_after``.

    libjpeg decodes every scan before the EOI, however many there are (``draft`` does not help for
    progressive files): 20,000 tiny repeated scans cost 0.8 s at 1080p, and a 50 MB body holds millions.
    Segments with a length (APPn: EXIF thumbnails, MPF) are skipped whole, so only scans the decoder
    would run are counted; data after the first EOI (an MPO's other pictures) is never decoded."""
    pos, scans, size = 2, 0, len(data)
    while pos + 4 <= size and scans <= stop_after:
        marker = data[pos + 1] if data[pos] == 0xFF else 0x00
        if marker == 0x00:  # entropy-coded data (or stuffing within it): on to the next real marker
            found = _NEXT_MARKER.search(data, pos + 1)
            if found is None:
                break
            pos = found.start()
            continue
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            break
        if marker in _STANDALONE:
            pos += 2
            continue
        scans += marker == 0xDA
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return scans


def _check_scans(data: bytes) -> None:
    if data[:2] == b"\xff\xd8":
        scans = jpeg_scans(data, MAX_JPEG_SCANS)
        if scans > MAX_JPEG_SCANS:
            raise TooManyScansError(MAX_JPEG_SCANS)


def inspect(data: bytes, max_pixels: int) -> Probe:
    """Format and size from the header alone; rejects empty, unknown, animated and oversized images,
    and JPEGs with more scans than any encoder writes. A multi-picture JPEG (MPO: stereo pairs, phone
    gain maps) is a JPEG whose first picture is the image."""
    if not data:
        raise EmptyUploadError()
    _check_scans(data)
    image = _open(data, max_pixels)
    assert image.format is not None  # set by every allow-listed plugin
    tables = getattr(image, "quantization", None) if image.format == "JPEG" else None
    quantization = {int(k): tuple(int(x) for x in v) for k, v in tables.items()} if tables else None
    return Probe(data, _FORMAT_OF.get(image.format, image.format), image.width, image.height, quantization)


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
