import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from deployments.upscaler.png import PngWriter, write_png


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


def test_rows_added_in_uneven_strips_make_the_same_image(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("deployments.upscaler.png.STRIP_BYTES", 500)  # several strips per add as well
    pixels = photo_like((97, 41, 3))
    writer = PngWriter(41, 97, 3)
    for start, stop in [(0, 1), (1, 30), (30, 31), (31, 97)]:
        writer.add(pixels[start:stop])
    assert np.array_equal(decoded(writer.finish()), pixels)


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
        PngWriter(4, 4, 3, level=5)
    with pytest.raises(ValueError, match="channels"):
        PngWriter(4, 4, 2)
    with pytest.raises(ValueError, match="uint8"):
        write_png(np.zeros((4, 4, 3), np.uint16))
    writer = PngWriter(4, 4, 3)
    writer.add(np.zeros((3, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="rows added"):
        writer.add(np.zeros((2, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="only 3 of 4 rows"):
        writer.finish()
