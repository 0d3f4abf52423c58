import io
import zlib

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms

from deployments.upscaler.encode import encode, exif_for_output
from deployments.upscaler.png import write_png


def pixels(channels: int) -> np.ndarray:
    shape = (20, 30) if channels == 1 else (20, 30, channels)
    return np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_png_is_lossless(channels: int) -> None:
    image = encode(pixels(channels), "png")
    assert (image.extension, image.content_type, image.width, image.height) == ("png", "image/png", 30, 20)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(image.data))), pixels(channels))


def smooth(width: int = 256, height: int = 128) -> np.ndarray:
    """A gradient with gentle noise: what upscaled photographs look like to a PNG filter."""
    ramp = np.add.outer(np.arange(height), np.arange(width)) % 256
    noise = np.random.default_rng(1).integers(0, 3, (height, width))
    return np.stack([ramp, ramp // 2, (ramp + noise) % 256], axis=2).astype(np.uint8)


@pytest.mark.parametrize("level", [0, 1, 3, 4, 9])
def test_png_is_lossless_at_every_level(level: int) -> None:
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(encode(smooth(), "png", level).data))), smooth())


@pytest.mark.parametrize("level", [1, 2])
def test_the_fast_levels_use_the_fast_writer(level: int) -> None:
    assert encode(smooth(), "png", level).data == write_png(smooth(), level)


@pytest.mark.parametrize(("level", "strategy"), [(3, zlib.Z_RLE), (4, None), (9, None)])
def test_slower_png_levels_use_pillow(level: int, strategy: int | None) -> None:
    expected = io.BytesIO()
    options = {"compress_level": level} | ({"compress_type": strategy} if strategy is not None else {})
    Image.fromarray(smooth()).save(expected, "PNG", **options)
    assert encode(smooth(), "png", level).data == expected.getvalue()


@pytest.mark.parametrize(("fmt", "extension", "pil_format"), [("webp", "webp", "WEBP"), ("jpeg", "jpg", "JPEG")])
def test_lossy_formats_on_request(fmt: str, extension: str, pil_format: str) -> None:
    image = encode(pixels(3), fmt)
    assert image.extension == extension and Image.open(io.BytesIO(image.data)).format == pil_format


def test_jpeg_never_drops_transparency() -> None:
    assert encode(pixels(4), "jpeg").extension == "png"


@pytest.mark.parametrize("level", [1, 3])
def test_icc_profile_and_exif_are_carried(level: int) -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "cam"
    image = Image.open(io.BytesIO(encode(pixels(3), "png", level, icc_profile=profile, exif=exif.tobytes()).data))
    assert image.info["icc_profile"] == profile and image.getexif()[0x010F] == "cam"


def exif_with_gps() -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "cam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", (52.0, 31.0, 12.0)
    return exif.tobytes()


def test_the_gps_position_is_dropped_and_the_rest_of_the_exif_kept() -> None:
    kept = exif_for_output(exif_with_gps())
    assert kept is not None
    parsed = Image.Exif()
    parsed.load(kept)
    assert parsed[ExifTags.Base.Make] == "cam"
    assert ExifTags.IFD.GPSInfo not in parsed and parsed.get_ifd(ExifTags.IFD.GPSInfo) == {}


def test_keep_gps_passes_the_exif_on_unchanged() -> None:
    exif = exif_with_gps()
    assert exif_for_output(exif, keep_gps=True) == exif


def test_exif_without_gps_is_passed_on_unchanged_and_none_stays_none() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "cam"
    assert exif_for_output(exif.tobytes()) == exif.tobytes()
    assert exif_for_output(None) is None


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize("block", [b"Exif\x00\x00not a TIFF header", b"Exif\x00\x00MM\x00*garbage"])
def test_exif_that_cannot_be_parsed_is_dropped(block: bytes) -> None:
    assert exif_for_output(block) is None
