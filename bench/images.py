"""Images made on the spot, for the tests and the benchmarks: every awkward-but-valid and every hostile kind
the API must handle (kept in bench/ so benchmarks need nothing from tests/)."""

from __future__ import annotations

import importlib.util
import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def photo_dir() -> Path | None:
    """scikit-image's bundled photographs (a dev dependency), or None when it is not installed."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def noise(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    """A smooth-ish random image (noise compresses badly and upscales like texture)."""
    rng = np.random.default_rng(seed)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    small = rng.integers(0, 256, size=(max(1, height // 4), max(1, width // 4), channels), dtype=np.uint8)
    image = Image.fromarray(small.squeeze(-1) if channels == 1 else small, mode)
    return image.resize((width, height), Image.Resampling.BILINEAR)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def jpeg(width: int, height: int, seed: int = 0, **options: object) -> bytes:
    return encode(noise(width, height, seed=seed), "JPEG", quality=90, **options)


def png(width: int, height: int, mode: str = "RGB", seed: int = 0) -> bytes:
    return encode(noise(width, height, mode, seed), "PNG")


def cmyk_jpeg(width: int = 64, height: int = 48) -> bytes:
    return encode(noise(width, height).convert("CMYK"), "JPEG")


def palette_png_with_transparency(width: int = 64, height: int = 48) -> bytes:
    image = noise(width, height).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return encode(image, "PNG", transparency=0)


def png16_grey(width: int = 64, height: int = 48) -> bytes:
    ramp = np.linspace(0, 65535, width * height, dtype=np.float64).reshape(height, width)
    return encode(Image.fromarray(ramp.astype(np.uint16)), "PNG")


def exif_rotated_jpeg(width: int = 80, height: int = 40, orientation: int = 6) -> bytes:
    """Stored landscape ``width×height``; orientation 6 means "display rotated 90° clockwise"."""
    image = noise(width, height)
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "VisionCloud test camera"  # a tag that must survive the rotation
    return encode(image, "JPEG", exif=exif.tobytes())


def truncated(data: bytes, keep: float = 0.6) -> bytes:
    return data[: int(len(data) * keep)]


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny PNG whose header declares ``width×height`` pixels: a decompression bomb."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def gif(width: int = 32, height: int = 32) -> bytes:
    return encode(noise(width, height), "GIF")


def bmp(width: int = 32, height: int = 32) -> bytes:
    return encode(noise(width, height), "BMP")


def animated_png(frames: int = 3) -> bytes:
    images = [noise(32, 32, seed=i) for i in range(frames)]
    return encode(images[0], "PNG", save_all=True, append_images=images[1:])


def progressive_jpeg_with_extra_scans(extra: int, width: int = 64, height: int = 48) -> bytes:
    """A progressive JPEG with its smallest scan repeated ``extra`` times before the EOI: valid to
    libjpeg, which decodes every one (the scan bomb)."""
    data = encode(noise(width, height), "JPEG", quality=90, progressive=True)
    starts = [i for i in range(len(data) - 1) if data[i : i + 2] == b"\xff\xda"]
    ends = [*starts[1:], len(data) - 2]  # each scan runs to the next SOS (or to the EOI)
    chunks = [data[s:e] for s, e in zip(starts, ends, strict=True)]
    smallest = min(chunks, key=len)
    return data[:-2] + smallest * extra + b"\xff\xd9"


def mpo(width: int = 64, height: int = 48) -> bytes:
    """A multi-picture JPEG (stereo pair / phone gain map style): two pictures in one file."""
    first, second = noise(width, height, seed=1), noise(width, height, seed=2)
    return encode(first, "MPO", save_all=True, append_images=[second], quality=90)
