"""A fast lossless PNG writer: rows filtered with NumPy, deflated by ISA-L in parallel bands, ICC and EXIF kept.

Pillow's PNG encoder tries all five PNG filters on every row and keeps the best (libpng's heuristic),
then deflates with zlib; on an upscaled 4K photograph most of its time is the filter search and
zlib. Here every row uses the Average filter (type 3: each byte minus the
mean of its left and upper neighbours), computed with whole-array uint8 operations, and the stream is
deflated by Intel's ISA-L (``isal``, the maintained Python binding of the library behind igzip),
which is several times faster than zlib at its fast levels. ``python -m bench.encode`` measures it
against Pillow on upscaled 4K photographs and an 8K ×4 output; the figures are in docs/benchmarks.md,
"Encoding".

A large image is cut into horizontal bands deflated at once on ``threads`` threads (NumPy and ISA-L
release the GIL), pigz's way: every band but the last ends on a sync flush (a byte boundary, not a
final block), so the raw streams joined are one deflate stream; the bands' Adler-32 sums are combined
as zlib's ``adler32_combine`` does. Each band restarts the 32 KiB window, which on a 7680×4320 output
costs a few hundred bytes of 17 MB. The output is a standard 8-bit PNG (greyscale, RGB or RGBA):
IHDR, iCCP, eXIf, IDAT…, IEND, as Pillow writes them; the IDAT chunks hold the zlib header, one chunk
per band, and the Adler-32 trailer.
"""

from __future__ import annotations

import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from isal import isal_zlib
from numpy.typing import NDArray

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOUR_TYPES = {1: 0, 3: 2, 4: 6}  # channels → PNG colour type (grey, RGB, RGBA)
AVERAGE = 3  # the PNG filter type every row uses
# ISA-L's levels used: 0 is Huffman-only, and 3 was slower and larger on upscaled photos (bench.encode).
LEVELS = (1, 2)
STRIP_BYTES = 1 << 20  # rows filtered at once: ~1 MiB stays in cache between filter and deflate
BAND_BYTES = 4 << 20  # no band smaller than this: below it a thread costs more than it saves
ZLIB_HEADER = b"\x78\x01"  # deflate, 32 KiB window, no dictionary; the level hint is informative only
ADLER_BASE = 65521


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


@dataclass(frozen=True)
class Band:
    """Rows filtered and deflated alone: an IDAT chunk of their raw deflate stream, and the Adler-32 of
    (and the number of) the filtered bytes it holds."""

    idat: bytes
    adler: int
    length: int


def deflate_band(
    rows: NDArray[np.uint8], above: NDArray[np.uint8], channels: int, level: int, last: bool, lead: bytes = b""
) -> Band:
    """``rows`` (``n × row_bytes``) whose upper neighbour is ``above`` (``1 × row_bytes``; zeros for
    the image's first row), filtered in strips and deflated as one raw stream that ends the image
    (``last``) or on a sync flush; ``lead`` (the zlib header) goes before it in its IDAT chunk."""
    deflate = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15)
    parts, adler, step = [lead], 1, max(1, STRIP_BYTES // rows.shape[1])
    for start in range(0, rows.shape[0], step):
        strip = rows[start : start + step]
        strip_above = np.concatenate([above, strip[:-1]]) if start == 0 else rows[start - 1 : start - 1 + len(strip)]
        filtered = average_filter(strip, strip_above, channels)
        adler = isal_zlib.adler32(filtered, adler)
        parts.append(deflate.compress(filtered))
    parts.append(deflate.flush(isal_zlib.Z_FINISH if last else isal_zlib.Z_SYNC_FLUSH))
    return Band(chunk(b"IDAT", b"".join(parts)), adler, rows.size + rows.shape[0])


def adler32_combine(first: int, second: int, second_length: int) -> int:
    """The Adler-32 of two byte strings joined, from each one's sum and the second's length (zlib's
    ``adler32_combine``, which Python's ``zlib`` does not expose)."""
    rem = second_length % ADLER_BASE
    low = (first & 0xFFFF) + (second & 0xFFFF) + ADLER_BASE - 1
    high = rem * (first & 0xFFFF) + (first >> 16) + (second >> 16) + ADLER_BASE - rem
    return ((high % ADLER_BASE) << 16) | (low % ADLER_BASE)


def band_bounds(height: int, row_bytes: int, threads: int) -> list[int]:
    """Row indices cutting ``height`` rows into bands: two per thread, so that a thread done early takes
    another, but none under ``BAND_BYTES``; a single band for a small image or one thread."""
    return split_rows(height, row_bytes, 2 * threads if threads > 1 else 1)


def split_rows(height: int, row_bytes: int, bands: int) -> list[int]:
    """Row indices cutting ``height`` rows into up to ``bands`` bands of about equal height, none under
    ``BAND_BYTES`` (at least one band)."""
    count = max(1, min(bands, height * row_bytes // BAND_BYTES, height))
    return [round(i * height / count) for i in range(count + 1)]


class BandedPng:
    """A PNG of ``pixels`` written band by band: ``band(i)`` may run on any thread, in any order, as soon
    as rows ``bounds[i] - 1`` to ``bounds[i + 1] - 1`` hold their final values (a band's filter reads the
    row above it), and ``finish`` joins the bands. The file's bytes depend on the bands' bounds only,
    never on which thread deflated which band or when."""

    def __init__(
        self,
        pixels: NDArray[np.uint8],
        bounds: list[int],
        level: int = 1,
        icc_profile: bytes | None = None,
        exif: bytes | None = None,
    ) -> None:
        self.channels = _channels(pixels)
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level}")
        self.height, self.width = int(pixels.shape[0]), int(pixels.shape[1])
        if bounds[0] != 0 or bounds[-1] != self.height or sorted(set(bounds)) != bounds:
            raise ValueError(f"band bounds {bounds} do not cut {self.height} rows")
        self.pixels, self.bounds, self.level = pixels, bounds, level
        self.rows = pixels.reshape(self.height, self.width * self.channels)  # a view: rows still being written
        self.head = metadata_chunks(icc_profile, exif)

    @property
    def bands(self) -> int:
        return len(self.bounds) - 1

    def band(self, i: int) -> Band:
        top, bottom = self.bounds[i], self.bounds[i + 1]
        above = self.rows[top - 1 : top] if top else np.zeros((1, self.rows.shape[1]), np.uint8)
        lead = ZLIB_HEADER if i == 0 else b""
        return deflate_band(self.rows[top:bottom], above, self.channels, self.level, i == self.bands - 1, lead)

    def finish(self, bands: list[Band]) -> bytes:
        """The file, from every band's ``band(i)`` in order."""
        if len(bands) != self.bands:
            raise ValueError(f"{len(bands)} bands for {self.bands}")
        adler = bands[0].adler
        for later in bands[1:]:
            adler = adler32_combine(adler, later.adler, later.length)
        ihdr = struct.pack(">IIBBBBB", self.width, self.height, 8, COLOUR_TYPES[self.channels], 0, 0, 0)
        head = [SIGNATURE, chunk(b"IHDR", ihdr), *self.head]
        return b"".join([*head, *(b.idat for b in bands), chunk(b"IDAT", struct.pack(">I", adler)), chunk(b"IEND")])


def write_png(
    pixels: NDArray[np.uint8],
    level: int = 1,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    threads: int = 1,
) -> bytes:
    """``pixels`` (``H×W``, ``H×W×3`` or ``H×W×4`` uint8) as a PNG file, ISA-L ``level`` 1 or 2, its
    bands deflated on up to ``threads`` threads (the same bytes whatever the thread count, for a given
    number of bands)."""
    channels = _channels(pixels)
    height, row_bytes = int(pixels.shape[0]), int(pixels.shape[1]) * channels
    writer = BandedPng(np.ascontiguousarray(pixels), band_bounds(height, row_bytes, threads), level, icc_profile, exif)
    if writer.bands > 1:
        with ThreadPoolExecutor(min(threads, writer.bands), thread_name_prefix="png-band") as pool:
            return writer.finish(list(pool.map(writer.band, range(writer.bands))))
    return writer.finish([writer.band(0)])
