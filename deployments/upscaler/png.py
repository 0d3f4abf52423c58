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
final block), so the raw streams joined are one deflate stream; the bands' Adler-32 sums are joined
from their sums and lengths (``adler32_join``). Each band restarts the 32 KiB window, which on a 7680×4320 output
costs a few hundred bytes of 17 MB. The output is a standard 8-bit PNG (greyscale, RGB or RGBA):
IHDR, iCCP, eXIf, IDAT…, IEND, as Pillow writes them; the IDAT chunks hold the zlib header, one chunk
per band, and the Adler-32 trailer.

A band may also be cut at a column into two pieces (``BandedPng``'s ``cut``), each row's part deflated
alone and ended on a full flush, so that the left piece can be deflated before the right one's pixels
exist (the upscaler's last column of tiles): the parts interleave row by row into the band's stream. On
an 8K ×4 output this costs about 1 % of size and lets half of what the last tile leaves be deflated
earlier.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
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
FINAL_BLOCK = b"\x03\x00"  # an empty final deflate block (fixed codes, end-of-block): ends a stream of parts
ADLER_BASE = 65521


def chunk(kind: bytes, data: bytes = b"") -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type and data."""
    return b"".join(chunk_parts(kind, [data]))


def chunk_parts(kind: bytes, parts: list[bytes]) -> list[bytes]:
    """One PNG chunk whose data is ``parts`` joined, as byte strings to join (the data is not copied)."""
    crc = isal_zlib.crc32(kind)
    for part in parts:
        crc = isal_zlib.crc32(part, crc)
    return [struct.pack(">I", sum(map(len, parts))) + kind, *parts, struct.pack(">I", crc)]


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
    """Rows filtered and deflated alone: an IDAT chunk of their raw deflate stream (as byte strings to
    join), and the Adler-32 of (and the number of) the filtered bytes it holds."""

    idat: list[bytes]
    adler: int
    length: int


def _strips(
    rows: NDArray[np.uint8], above: NDArray[np.uint8], step: int
) -> Iterator[tuple[NDArray[np.uint8], NDArray[np.uint8]]]:
    """``rows`` in strips of ``step`` rows, each with its rows' upper neighbours (``above`` for the first)."""
    for start in range(0, rows.shape[0], step):
        strip = rows[start : start + step]
        yield strip, np.concatenate([above, strip[:-1]]) if start == 0 else rows[start - 1 : start - 1 + len(strip)]


def deflate_band(
    rows: NDArray[np.uint8], above: NDArray[np.uint8], channels: int, level: int, last: bool, lead: bytes = b""
) -> Band:
    """``rows`` (``n × row_bytes``) whose upper neighbour is ``above`` (``1 × row_bytes``; zeros for
    the image's first row), filtered in strips and deflated as one raw stream that ends the image
    (``last``) or on a sync flush; ``lead`` (the zlib header) goes before it in its IDAT chunk."""
    deflate = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15)
    parts, adler = [lead], 1
    for strip, strip_above in _strips(rows, above, max(1, STRIP_BYTES // rows.shape[1])):
        filtered = average_filter(strip, strip_above, channels)
        adler = isal_zlib.adler32(filtered, adler)
        parts.append(deflate.compress(filtered))
    parts.append(deflate.flush(isal_zlib.Z_FINISH if last else isal_zlib.Z_SYNC_FLUSH))
    return Band([chunk(b"IDAT", b"".join(parts))], adler, rows.size + rows.shape[0])


@dataclass(frozen=True)
class Piece:
    """Columns of a band's rows, each row's part filtered and deflated alone (ending on a full flush, so it
    refers to nothing before it): ``parts[r]`` holds row ``r``'s ``length`` filtered bytes, whose Adler-32
    is ``adlers[r]``."""

    parts: list[bytes]
    adlers: list[int]
    length: int


def deflate_piece(
    rows: NDArray[np.uint8], above: NDArray[np.uint8], channels: int, level: int, start: int, stop: int
) -> Piece:
    """Bytes ``[start, stop)`` of each of ``rows`` (``n × row_bytes``, upper neighbour ``above`` as in
    ``deflate_band``), Average-filtered (the filter byte with the piece that starts the row; the left
    neighbour of a later piece's first pixel is the row's pixel before it) and deflated row by row."""
    deflate = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15)
    first = max(0, start - channels)  # the pixel left of the piece, for the filter
    drop = 0 if start == 0 else 1 + channels  # a later piece: not the filter byte nor that pixel
    parts, adlers = [], []
    for strip, strip_above in _strips(rows, above, max(1, STRIP_BYTES // (stop - first))):
        filtered = average_filter(strip[:, first:stop], strip_above[:, first:stop], channels)[:, drop:]
        for part in filtered:
            adlers.append(isal_zlib.adler32(part))
            parts.append(deflate.compress(part) + deflate.flush(isal_zlib.Z_FULL_FLUSH))
    return Piece(parts, adlers, stop - start + (start == 0))


def adler32_join(sums: list[int], lengths: NDArray[np.int64]) -> int:
    """The Adler-32 of byte strings joined, from each one's sum and length (zlib's ``adler32_combine``,
    which Python's ``zlib`` does not expose, for many at once): the low half adds up the bytes, the high
    half each byte's running sum."""
    low = np.asarray(sums, np.int64) & 0xFFFF
    byte_sums = (low - 1) % ADLER_BASE
    prefix_sums = ((np.asarray(sums, np.int64) >> 16) - lengths) % ADLER_BASE
    low_before = (1 + np.cumsum(byte_sums) - byte_sums) % ADLER_BASE
    high = int(np.sum(lengths % ADLER_BASE * low_before % ADLER_BASE + prefix_sums) % ADLER_BASE)
    return (high << 16) | int((1 + byte_sums.sum()) % ADLER_BASE)


def join_pieces(left: Piece, right: Piece, last: bool, lead: bytes = b"") -> Band:
    """One band from its two pieces: each row's left part then its right part, ending the image (``last``)
    with an empty final block; ``lead`` as in ``deflate_band``."""
    parts = [part for pair in zip(left.parts, right.parts, strict=True) for part in pair]
    lengths = np.tile(np.array([left.length, right.length], np.int64), len(left.parts))
    adler = adler32_join([s for pair in zip(left.adlers, right.adlers, strict=True) for s in pair], lengths)
    return Band(chunk_parts(b"IDAT", [lead, *parts, FINAL_BLOCK if last else b""]), adler, int(lengths.sum()))


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
    row above it), and ``finish`` joins the bands. With a ``cut`` (a column inside the image) each band is
    written as two pieces (``deflate_piece``), and ``left(i)`` may run as soon as the pixels left of the
    cut are final; ``band(i, left)`` then makes only the right piece. The file's bytes depend on the
    bounds and the cut only, never on which thread deflated which band or piece, or when."""

    def __init__(
        self,
        pixels: NDArray[np.uint8],
        bounds: list[int],
        level: int = 1,
        icc_profile: bytes | None = None,
        exif: bytes | None = None,
        cut: int = 0,
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
        self.cuts = [0, cut * self.channels, self.rows.shape[1]] if 0 < cut < self.width else [0, self.rows.shape[1]]

    @property
    def bands(self) -> int:
        return len(self.bounds) - 1

    @property
    def has_cut(self) -> bool:
        return len(self.cuts) > 2

    def _above(self, top: int) -> NDArray[np.uint8]:
        return self.rows[top - 1 : top] if top else np.zeros((1, self.rows.shape[1]), np.uint8)

    def _piece(self, i: int, side: int) -> Piece:
        top, bottom = self.bounds[i], self.bounds[i + 1]
        start, stop = self.cuts[side], self.cuts[side + 1]
        return deflate_piece(self.rows[top:bottom], self._above(top), self.channels, self.level, start, stop)

    def left(self, i: int) -> Piece:
        """Band ``i``'s piece left of the cut: it needs only those pixels of rows ``bounds[i] - 1`` to
        ``bounds[i + 1] - 1`` final."""
        if not self.has_cut:
            raise ValueError("a band without a cut has no left piece")
        return self._piece(i, 0)

    def band(self, i: int, left: Piece | None = None) -> Band:
        """Band ``i``, joined to its ``left`` piece where one is given (with a cut; made here if not)."""
        top, bottom = self.bounds[i], self.bounds[i + 1]
        last, lead = i == self.bands - 1, ZLIB_HEADER if i == 0 else b""
        if not self.has_cut:
            return deflate_band(self.rows[top:bottom], self._above(top), self.channels, self.level, last, lead)
        return join_pieces(left or self._piece(i, 0), self._piece(i, 1), last, lead)

    def finish(self, bands: list[Band]) -> bytes:
        """The file, from every band's ``band(i)`` in order."""
        if len(bands) != self.bands:
            raise ValueError(f"{len(bands)} bands for {self.bands}")
        adler = adler32_join([b.adler for b in bands], np.array([b.length for b in bands], np.int64))
        ihdr = struct.pack(">IIBBBBB", self.width, self.height, 8, COLOUR_TYPES[self.channels], 0, 0, 0)
        head = [SIGNATURE, chunk(b"IHDR", ihdr), *self.head]
        idat = [part for band in bands for part in band.idat]
        return b"".join([*head, *idat, chunk(b"IDAT", struct.pack(">I", adler)), chunk(b"IEND")])


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
