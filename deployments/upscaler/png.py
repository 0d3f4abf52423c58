"""A fast lossless PNG writer: rows filtered with NumPy, deflated by ISA-L, ICC and EXIF chunks kept.

Pillow's PNG encoder tries all five PNG filters on every row and keeps the best (libpng's heuristic),
then deflates with zlib; on an upscaled 4K photograph most of its time is the filter search and
zlib. Here every row uses the Average filter (type 3: each byte minus the
mean of its left and upper neighbours), computed with whole-array uint8 operations, and the stream is
deflated by Intel's ISA-L (``isal``, the maintained Python binding of the library behind igzip),
which is several times faster than zlib at its fast levels. ``python -m bench.encode`` measures it
against Pillow on upscaled 4K photographs and an 8K ×4 output; the figures are in docs/benchmarks.md,
"Encoding".

``PngWriter`` takes the rows top to bottom in strips of any height, so an image can be encoded while
the rows below it are still being computed; ``write_png`` is the one-shot form. The output is a
standard 8-bit PNG (greyscale, RGB or RGBA): IHDR, iCCP, eXIf, IDAT…, IEND, as Pillow writes them.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
from isal import isal_zlib
from numpy.typing import NDArray

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOUR_TYPES = {1: 0, 3: 2, 4: 6}  # channels → PNG colour type (grey, RGB, RGBA)
AVERAGE = 3  # the PNG filter type every row uses
# ISA-L's levels used: 0 is Huffman-only, and 3 was slower and larger on upscaled photos (bench.encode).
LEVELS = (1, 2)
STRIP_BYTES = 1 << 20  # rows filtered at once: ~1 MiB stays in cache between filter and deflate


def chunk(kind: bytes, data: bytes = b"") -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type and data."""
    crc = isal_zlib.crc32(data, isal_zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def metadata_chunks(icc_profile: bytes | None, exif: bytes | None) -> list[bytes]:
    """iCCP (the profile deflated, named as Pillow names it) and eXIf (TIFF-structured, no "Exif" prefix)."""
    chunks = []
    if icc_profile:
        chunks.append(chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc_profile)))
    if exif:
        chunks.append(chunk(b"eXIf", exif.removeprefix(b"Exif\x00\x00")))
    return chunks


def _channels(pixels: NDArray[np.uint8]) -> int:
    channels = 1 if pixels.ndim == 2 else int(pixels.shape[2])
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or channels not in COLOUR_TYPES:
        raise ValueError(f"expected an H×W, H×W×3 or H×W×4 uint8 image, got {pixels.shape} {pixels.dtype}")
    return channels


def average_filter(rows: NDArray[np.uint8], above: NDArray[np.uint8], channels: int) -> NDArray[np.uint8]:
    """Filter type 3 of ``rows`` (``n × row_bytes``) whose upper neighbours are ``above`` (same shape):
    ``n × (1 + row_bytes)``, each row led by its filter byte. ``⌊(a + b) / 2⌋`` is computed as
    ``(a & b) + ((a ^ b) >> 1)``, which never leaves uint8."""
    out = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
    out[:, 0] = AVERAGE
    body = out[:, 1:]
    np.right_shift(above[:, :channels], 1, out=body[:, :channels])  # no left neighbour: (0 + b) / 2
    left, up = rows[:, :-channels], above[:, channels:]
    half = np.bitwise_xor(left, up)
    half >>= 1
    np.bitwise_and(left, up, out=body[:, channels:])
    body[:, channels:] += half
    np.subtract(rows, body, out=body)
    return out


class PngWriter:
    """Encodes an image whose rows arrive top to bottom (``add``), then ``finish`` gives the file."""

    def __init__(
        self,
        width: int,
        height: int,
        channels: int,
        level: int = 1,
        icc_profile: bytes | None = None,
        exif: bytes | None = None,
    ) -> None:
        if channels not in COLOUR_TYPES:
            raise ValueError(f"PNG takes 1, 3 or 4 channels, got {channels}")
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level}")
        self.width, self.height, self.channels = width, height, channels
        ihdr = struct.pack(">IIBBBBB", width, height, 8, COLOUR_TYPES[channels], 0, 0, 0)
        self._parts = [SIGNATURE, chunk(b"IHDR", ihdr), *metadata_chunks(icc_profile, exif)]
        self._deflate = isal_zlib.compressobj(level)
        self._last_row: NDArray[np.uint8] = np.zeros((1, width * channels), np.uint8)
        self.rows_done = 0

    def add(self, rows: NDArray[np.uint8]) -> None:
        """The next rows (``n × width[× channels]`` uint8), below those added before."""
        rows = np.ascontiguousarray(rows).reshape(rows.shape[0], self.width * self.channels)
        if self.rows_done + rows.shape[0] > self.height:
            raise ValueError(f"{self.rows_done + rows.shape[0]} rows added to an image {self.height} rows high")
        step = max(1, STRIP_BYTES // rows.shape[1])
        for start in range(0, rows.shape[0], step):
            strip = rows[start : start + step]
            if start == 0:
                above = np.concatenate([self._last_row, strip[:-1]])
            else:
                above = rows[start - 1 : start - 1 + len(strip)]
            self._idat(self._deflate.compress(average_filter(strip, above, self.channels)))
        self._last_row = rows[-1:].copy()
        self.rows_done += rows.shape[0]

    def _idat(self, data: bytes) -> None:
        if data:
            self._parts.append(chunk(b"IDAT", data))

    def finish(self) -> bytes:
        if self.rows_done != self.height:
            raise ValueError(f"only {self.rows_done} of {self.height} rows were added")
        self._idat(self._deflate.flush())
        self._parts.append(chunk(b"IEND"))
        return b"".join(self._parts)


def write_png(
    pixels: NDArray[np.uint8], level: int = 1, icc_profile: bytes | None = None, exif: bytes | None = None
) -> bytes:
    """``pixels`` (``H×W``, ``H×W×3`` or ``H×W×4`` uint8) as a PNG file, ISA-L ``level`` 1 or 2."""
    channels = _channels(pixels)
    writer = PngWriter(int(pixels.shape[1]), int(pixels.shape[0]), channels, level, icc_profile, exif)
    writer.add(pixels)
    return writer.finish()
