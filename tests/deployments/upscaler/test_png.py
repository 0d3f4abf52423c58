import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms

from deployments.upscaler.png import BandedPng, adler32_join, band_bounds, split_rows, write_png


def photo_like(shape: tuple[int, ...]) -> np.ndarray:
    """Smooth gradients with noise: the rows a PNG filter sees in an upscaled photograph."""
    height, width = shape[:2]
    ramp = np.add.outer(np.arange(height), 2 * np.arange(width)) % 256
    noise = np.random.default_rng(0).integers(0, 4, shape)
    base = ramp if len(shape) == 2 else np.stack([ramp] * shape[2], axis=2)
    return ((base + noise) % 256).astype(np.uint8)


def decoded(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    image.verify()  # chunk CRCs and structure
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.mark.parametrize("shape", [(1, 1), (37, 53), (37, 53, 3), (37, 53, 4), (1, 300, 3), (300, 1, 4)])
@pytest.mark.parametrize("level", [1, 2])
def test_pillow_reads_back_the_exact_pixels(shape: tuple[int, ...], level: int) -> None:
    assert np.array_equal(decoded(write_png(photo_like(shape), level)), photo_like(shape))


def test_random_pixels_survive_too() -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    assert np.array_equal(decoded(write_png(pixels)), pixels)


def idat_stream(data: bytes) -> bytes:
    """The zlib stream of a PNG: its IDAT chunks' data joined."""
    stream, pos = b"", 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        if data[pos + 4 : pos + 8] == b"IDAT":
            stream += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return stream


@pytest.mark.parametrize("threads", [2, 3, 8])
def test_an_image_deflated_in_parallel_bands_is_one_valid_zlib_stream(
    monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    monkeypatch.setattr("deployments.upscaler.png.BAND_BYTES", 2_000)  # a small image cut into many bands
    monkeypatch.setattr("deployments.upscaler.png.STRIP_BYTES", 500)  # and each band into several strips
    pixels = photo_like((97, 41, 3))
    data = write_png(pixels, threads=threads)
    assert len(band_bounds(97, 41 * 3, threads)) - 1 == min(2 * threads, 97 * 41 * 3 // 2_000)
    assert np.array_equal(decoded(data), pixels)
    # zlib checks the Adler-32 trailer (Pillow does not): the bands' sums were combined right.
    assert zlib.decompress(idat_stream(data)) == zlib.decompress(idat_stream(write_png(pixels)))


def test_the_bands_do_not_change_the_image_only_a_few_bytes_of_size(monkeypatch: pytest.MonkeyPatch) -> None:
    pixels = photo_like((256, 256, 3))
    one = write_png(pixels)
    monkeypatch.setattr("deployments.upscaler.png.BAND_BYTES", 16_000)
    four = write_png(pixels, threads=2)
    assert np.array_equal(decoded(four), pixels)
    assert len(idat_stream(four)) - len(idat_stream(one)) < 4 * 1024  # each band restarts the window


def test_small_images_and_one_thread_make_a_single_band() -> None:
    assert band_bounds(2160, 3840 * 3, 1) == [0, 2160]
    assert band_bounds(64, 64 * 3, 8) == [0, 64]  # 12 KiB: a thread would cost more than it saves
    assert band_bounds(4320, 7680 * 3, 2) == [0, 1080, 2160, 3240, 4320]


@pytest.mark.parametrize("split", [0, 1, 5552, 65521, 70_000])
def test_adler32_of_two_parts_joins_as_zlibs(split: int) -> None:
    data = np.random.default_rng(2).integers(0, 256, 140_000, dtype=np.uint8).tobytes()
    first, second = data[:split], data[split:]
    lengths = np.array([len(first), len(second)], np.int64)
    assert adler32_join([zlib.adler32(first), zlib.adler32(second)], lengths) == zlib.adler32(data)


@pytest.mark.parametrize("lengths", [[0], [5, 0, 7], [70_000, 1, 65_521], [11_521] * 600])
def test_adler32_of_many_parts_joins_as_zlibs(lengths: list[int]) -> None:
    data = np.random.default_rng(3).integers(0, 256, sum(lengths), dtype=np.uint8).tobytes()
    parts = np.split(np.frombuffer(data, np.uint8), np.cumsum(lengths)[:-1])
    sums = [zlib.adler32(part.tobytes()) for part in parts]
    assert adler32_join(sums, np.array(lengths, np.int64)) == zlib.adler32(data)


def banded(pixels: np.ndarray, bands: int, cut: int = 0) -> bytes:
    writer = BandedPng(pixels, split_rows(pixels.shape[0], 1, bands), cut=cut)
    return writer.finish([writer.band(i) for i in range(writer.bands)])


@pytest.mark.parametrize("shape", [(37, 53), (37, 53, 3), (37, 53, 4)])
@pytest.mark.parametrize("cut", [1, 20, 52])
def test_bands_cut_into_pieces_hold_the_same_filtered_rows_in_one_valid_zlib_stream(
    monkeypatch: pytest.MonkeyPatch, shape: tuple[int, ...], cut: int
) -> None:
    monkeypatch.setattr("deployments.upscaler.png.BAND_BYTES", 1)
    monkeypatch.setattr("deployments.upscaler.png.STRIP_BYTES", 200)  # each piece in several strips
    pixels = photo_like(shape)
    data = banded(pixels, 4, cut)
    assert np.array_equal(decoded(data), pixels)
    # zlib checks the joined Adler-32; the filter saw the same neighbours as in whole bands.
    assert zlib.decompress(idat_stream(data)) == zlib.decompress(idat_stream(banded(pixels, 4)))


def test_a_cut_outside_the_image_leaves_whole_bands() -> None:
    pixels = photo_like((16, 16, 3))
    assert banded(pixels, 2, 0) == banded(pixels, 2, 16) == banded(pixels, 2)
    assert BandedPng(pixels, [0, 16], cut=8).has_cut and not BandedPng(pixels, [0, 16], cut=16).has_cut


def test_icc_profile_and_exif_reach_pillow() -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "camera maker"
    image = Image.open(io.BytesIO(write_png(photo_like((8, 8, 3)), icc_profile=profile, exif=exif.tobytes())))
    assert image.info["icc_profile"] == profile
    assert image.getexif()[0x010F] == "camera maker"


def test_the_file_is_smaller_than_the_pixels() -> None:
    pixels = photo_like((256, 256, 3))
    assert len(write_png(pixels)) < pixels.nbytes / 2


def test_misuse_is_refused() -> None:
    with pytest.raises(ValueError, match="level"):
        write_png(np.zeros((4, 4, 3), np.uint8), level=5)
    with pytest.raises(ValueError, match="uint8"):
        write_png(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        write_png(np.zeros((4, 4, 3), np.uint16))
