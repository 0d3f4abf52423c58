import io

import numpy as np
import pytest
from PIL import Image

from bench import images
from deployments.contracts.errors import (
    AnimatedImageError,
    CorruptImageError,
    EmptyUploadError,
    NotAnImageError,
    TooManyPixelsError,
    TooManyScansError,
    UnsupportedFormatError,
)
from deployments.flow import inspection

LIMIT = 50_000_000


def decoded(data: bytes) -> np.ndarray:
    return inspection.decode(inspection.inspect(data, LIMIT), LIMIT).pixels


def test_inspect_reads_format_and_size_from_the_header() -> None:
    probe = inspection.inspect(images.jpeg(64, 48), LIMIT)
    assert (probe.format, probe.width, probe.height, probe.extension) == ("JPEG", 64, 48, "jpg")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", EmptyUploadError),
        (b"definitely not an image", NotAnImageError),
        (images.gif(), UnsupportedFormatError),
        (images.bmp(), UnsupportedFormatError),
        (images.png_bomb(), TooManyPixelsError),
        (images.animated_png(), AnimatedImageError),
    ],
)
def test_inspect_refuses_before_decoding_pixels(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        inspection.inspect(data, LIMIT)


def test_unsupported_formats_are_named() -> None:
    with pytest.raises(UnsupportedFormatError, match="GIF images are not supported"):
        inspection.inspect(images.gif(), LIMIT)


def test_the_pixel_limit_is_configurable_and_inclusive() -> None:
    data = images.png(100, 100)
    inspection.inspect(data, 10_000)
    with pytest.raises(TooManyPixelsError, match="100×100"):
        inspection.inspect(data, 9_999)


@pytest.mark.parametrize("data", [images.jpeg(256, 256), images.png(256, 256)], ids=["jpeg", "png"])
def test_truncated_images_fail_the_full_check(data: bytes) -> None:
    probe = inspection.inspect(images.truncated(data), LIMIT)  # the header is intact
    with pytest.raises(CorruptImageError):
        inspection.verify(probe, LIMIT)
    with pytest.raises(CorruptImageError):
        inspection.decode(probe, LIMIT)


def test_verify_passes_intact_images() -> None:
    for data in (images.jpeg(300, 200), images.png(30, 20), images.encode(images.noise(30, 20), "WEBP")):
        inspection.verify(inspection.inspect(data, LIMIT), LIMIT)


def test_cmyk_jpeg_becomes_rgb() -> None:
    assert decoded(images.cmyk_jpeg(64, 48)).shape == (48, 64, 3)


def test_palette_png_with_transparency_keeps_alpha() -> None:
    pixels = decoded(images.palette_png_with_transparency())
    assert pixels.shape == (48, 64, 4) and pixels[..., 3].min() == 0 and pixels[..., 3].max() == 255


def test_rgba_and_greyscale_keep_their_channels() -> None:
    assert decoded(images.png(30, 20, "RGBA")).shape == (20, 30, 4)
    assert decoded(images.png(30, 20, "L")).shape == (20, 30)


def test_16_bit_greyscale_is_scaled_not_clipped() -> None:
    pixels = decoded(images.png16_grey(64, 48))
    assert pixels.dtype == np.uint8 and pixels.min() == 0 and pixels.max() == 255
    assert 100 < np.median(pixels) < 155  # a full ramp, not a wall of 255


def test_exif_orientation_is_applied_and_removed() -> None:
    data = images.exif_rotated_jpeg(80, 40, orientation=6)
    image = inspection.decode(inspection.inspect(data, LIMIT), LIMIT)
    assert image.pixels.shape[:2] == (80, 40)  # rotated to portrait
    assert image.exif is not None
    tags = _tags(image.exif)
    assert 0x0112 not in tags and tags[0x010F] == "VisionCloud test camera"


def _tags(exif: bytes) -> dict[int, object]:
    parsed = Image.Exif()
    parsed.load(exif)
    return dict(parsed)


def test_icc_profile_is_carried() -> None:
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = images.encode(images.noise(20, 20), "PNG", icc_profile=profile)
    assert inspection.decode(inspection.inspect(data, LIMIT), LIMIT).icc_profile == profile


@pytest.mark.parametrize(
    ("width", "height", "score"),
    [(3840, 2160, 1.0), (1920, 1080, 0.25), (1, 1, 1 / (3840 * 2160)), (7680, 4320, 4.0)],
)
def test_quality_score_is_pixels_over_4k(width: int, height: int, score: float) -> None:
    assert inspection.quality_score(width, height) == pytest.approx(score)


def test_real_progressive_jpegs_are_accepted_with_their_scans_counted() -> None:
    progressive = images.encode(images.noise(64, 48), "JPEG", quality=90, progressive=True)
    assert 2 < inspection.jpeg_scans(progressive, 1000) <= 10
    assert inspection.jpeg_scans(images.jpeg(64, 48), 1000) == 1
    assert decoded(progressive).shape == (48, 64, 3)


def test_a_jpeg_with_more_scans_than_any_encoder_writes_is_refused_before_decoding() -> None:
    bomb = images.progressive_jpeg_with_extra_scans(inspection.MAX_JPEG_SCANS)
    with pytest.raises(TooManyScansError, match="more than 100 scans"):
        inspection.inspect(bomb, LIMIT)
    assert decoded(images.progressive_jpeg_with_extra_scans(20)).shape == (48, 64, 3)  # a few extra: fine


def test_200k_extra_scans_are_counted_only_up_to_the_limit() -> None:
    bomb = images.progressive_jpeg_with_extra_scans(200_000)  # ~11 MB; libjpeg would take seconds
    assert inspection.jpeg_scans(bomb, inspection.MAX_JPEG_SCANS) == inspection.MAX_JPEG_SCANS + 1


def test_an_exif_thumbnail_holding_scan_markers_is_skipped_whole() -> None:
    app1 = b"Exif\x00\x00" + b"\xff\xda\x00\x02" * 500  # marker bytes inside a length-delimited segment
    data = images.jpeg(64, 48)
    with_app1 = data[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + data[2:]
    assert inspection.jpeg_scans(with_app1, 1000) == 1


def test_a_multi_picture_jpeg_is_a_jpeg_decoded_from_its_first_picture() -> None:
    data = images.mpo()
    probe = inspection.inspect(data, LIMIT)
    assert (probe.format, probe.extension, probe.width, probe.height) == ("JPEG", "jpg", 64, 48)
    inspection.verify(probe, LIMIT)
    first = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert np.array_equal(inspection.decode(probe, LIMIT).pixels, first)
