"""Encoding upscaled pixels for storage. PNG (lossless) by default; WebP and JPEG on request.

Encoding sits on every upscale's critical path and shares the cores with the forward pass.
``PNG_COMPRESS_LEVEL`` 1 and 2 (1 is the default) use the fast writer in ``png.py`` (Average filter,
ISA-L deflate at that level): on upscaled photographs several times less CPU than Pillow's level 1
for somewhat larger files (``python -m bench.encode``; the figures are in docs/benchmarks.md,
"Encoding"). Level 0 stores, and levels 3–9 use Pillow's zlib encoder for
smaller files at several times the cost (3 with zlib's run-length strategy, which at that level is
as small as Pillow's default strategy at 6 and faster; 4–9 with the default strategy).

Metadata: the ICC profile and the EXIF (orientation already applied) are carried to every format, but
the EXIF GPS position is dropped unless ``KEEP_GPS`` is set (``exif_for_output``): an upscaled output
is shared and downloaded more widely than the photo it came from. An original stored as uploaded is
never re-encoded, so it keeps every byte.
"""

from __future__ import annotations

import io
import logging
import zlib

import numpy as np
from numpy.typing import NDArray
from PIL import ExifTags, Image

from configs import formats
from deployments.contracts.values import EncodedImage
from deployments.upscaler.png import LEVELS, write_png

log = logging.getLogger("ray.serve")

# PNG_COMPRESS_LEVEL and the fast writer (png.py) are this format's own.
PNG = formats.by_name("png")


def exif_for_output(exif: bytes | None, keep_gps: bool = False) -> bytes | None:
    """The EXIF block to write into an output: ``exif`` without its GPS IFD unless ``keep_gps``.
    An EXIF block that cannot be parsed (no tag read) is dropped whole rather than passed on with a
    position in it."""
    if not exif or keep_gps:
        return exif
    parsed = Image.Exif()
    try:
        parsed.load(exif)
    except Exception as exc:  # Pillow raises several kinds on a malformed block
        log.warning("dropping an EXIF block that cannot be parsed: %s", exc)
        return None
    if not len(parsed):
        return None
    if ExifTags.IFD.GPSInfo not in parsed:
        return exif
    del parsed[ExifTags.IFD.GPSInfo]
    return parsed.tobytes() if len(parsed) else None


def output_target(fmt: str, channels: int) -> formats.ImageFormat:
    """The format an output of ``channels`` channels is written in when ``fmt`` is asked: ``fmt``, or the
    fallback (PNG) when ``fmt`` cannot carry the alpha channel (never drop the user's transparency)."""
    target = formats.by_name(fmt)
    return formats.FALLBACK if not target.alpha and channels == 4 else target


def fast_png(fmt: str, png_compress_level: int, channels: int) -> bool:
    """Whether ``encode`` writes this output with the fast band writer (``png.py``)."""
    return output_target(fmt, channels) == PNG and png_compress_level in LEVELS


def encode(
    pixels: NDArray[np.uint8],
    fmt: str = formats.FALLBACK.name,
    png_compress_level: int = 1,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    threads: int = 1,
) -> EncodedImage:
    """``pixels`` written as the output format named ``fmt`` (``configs.formats``), with its table's
    encoder options; as the fallback format (PNG) instead when ``fmt`` cannot carry the image's alpha
    channel (never drop the user's transparency silently). ``threads``: how many a large PNG is
    deflated on (the fast writer's bands); the other encoders use one."""
    target = output_target(fmt, 1 if pixels.ndim == 2 else int(pixels.shape[2]))
    if target == PNG and png_compress_level in LEVELS:
        data = write_png(pixels, png_compress_level, icc_profile, exif, threads)
        return EncodedImage(data, PNG.extension, PNG.media_type, int(pixels.shape[1]), int(pixels.shape[0]))
    image = Image.fromarray(pixels)
    options: dict[str, object] = dict(target.encoder_options)
    if icc_profile:
        options["icc_profile"] = icc_profile
    if exif:
        options["exif"] = exif
    if target == PNG:
        options["compress_level"] = png_compress_level
        if 1 <= png_compress_level <= 3:
            options["compress_type"] = zlib.Z_RLE
    buffer = io.BytesIO()
    image.save(buffer, format=target.pillow, **options)
    return EncodedImage(buffer.getvalue(), target.extension, target.media_type, image.width, image.height)
