"""The no-reference metrics move the right way and by about the right amount on known degradations."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageFilter

from deployments.contracts.values import Degradation
from deployments.flow import quality
from models.data import shared_root

pytest.importorskip("skimage")
from skimage import data


@pytest.fixture(scope="module")
def photo() -> NDArray[np.uint8]:
    return np.asarray(data.astronaut())  # 512×512 RGB, public domain (NASA)


def noisy(image: NDArray[np.uint8], sigma: float, seed: int = 0) -> NDArray[np.uint8]:
    rng = np.random.default_rng(seed)
    return np.clip(np.round(image + rng.normal(0, sigma, image.shape)), 0, 255).astype(np.uint8)


def blurred(image: NDArray[np.uint8], radius: float) -> NDArray[np.uint8]:
    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius)))


def jpeg_tables(image: NDArray[np.uint8], q: int, **options: object) -> dict[int, list[int]]:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=q, **options)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return dict(decoded.quantization)


@pytest.mark.parametrize("q", [5, 20, 30, 50, 75, 90, 95, 100])
def test_jpeg_quality_is_read_back_exactly_from_the_tables(photo: NDArray[np.uint8], q: int) -> None:
    assert quality.jpeg_quality(jpeg_tables(photo, q)) == q
    assert quality.jpeg_quality(jpeg_tables(photo[..., 0], q)) == q  # greyscale: the luma table alone


def test_jpeg_quality_is_none_without_tables() -> None:
    assert quality.jpeg_quality(None) is None and quality.jpeg_quality({}) is None


@pytest.mark.parametrize("sigma", [2.0, 5.0, 10.0])
def test_noise_on_flat_grey_reads_sigma_within_ten_percent(sigma: float) -> None:
    flat = np.full((256, 256), 128, np.uint8)
    assert quality.measure(noisy(flat, sigma), 0.0).noise == pytest.approx(sigma, rel=0.1)


def test_noise_on_a_photo_grows_with_added_noise_and_reads_about_sigma(photo: NDArray[np.uint8]) -> None:
    clean = quality.measure(photo, 0.0).noise
    readings = [quality.measure(noisy(photo, s), 0.0).noise for s in (2, 5, 10, 20)]
    assert clean < 2 and readings == sorted(readings)
    assert readings[1] == pytest.approx(5, rel=0.2) and readings[2] == pytest.approx(10, rel=0.15)


def textured(name: str, scale: int) -> NDArray[np.uint8]:
    """A clean, dense texture (skimage's grass or gravel, tinted brown-green as a photo's would be),
    bicubic-downscaled ``scale``× as Urban100's low-resolution images are: fine detail everywhere and
    no flat block, where the per-channel Immerkær estimate read σ 5.7-9.7."""
    grey = np.asarray(getattr(data, name)(), dtype=np.float32)
    tinted = np.clip(grey[..., None] * np.array([1.0, 0.85, 0.7]) + np.array([10, 20, 30]), 0, 255)
    image = Image.fromarray(tinted.astype(np.uint8))
    return np.asarray(image.resize((image.width // scale, image.height // scale), Image.Resampling.BICUBIC))


@pytest.mark.parametrize(("name", "scale"), [("grass", 2), ("grass", 4), ("gravel", 2), ("gravel", 4)])
def test_clean_dense_texture_reads_as_clean(name: str, scale: int) -> None:
    assert quality.measure(textured(name, scale), 0.0).noise < 1.0


@pytest.mark.parametrize("sigma", [5.0, 10.0])
@pytest.mark.parametrize(("name", "scale"), [("grass", 4), ("gravel", 2)])
def test_noise_on_dense_texture_reads_sigma_within_twenty_percent(name: str, scale: int, sigma: float) -> None:
    assert quality.measure(noisy(textured(name, scale), sigma), 0.0).noise == pytest.approx(sigma, rel=0.2)


@pytest.fixture(scope="module")
def textured_photo() -> NDArray[np.uint8]:
    """A shared camera photograph of a town and hills (trees, roofs), ×8 smaller than taken: dense detail."""
    path = shared_root() / "datasets" / "photos" / "life_by_Aitzol_Berasategi.jpg"
    if not path.is_file():
        pytest.skip(f"{path} is not here (shared datasets)")
    with Image.open(path) as photo:
        photo.draft("RGB", (photo.width // 2, photo.height // 2))
        rgb = photo.convert("RGB")
    return np.asarray(rgb.resize((rgb.width // 4, rgb.height // 4), Image.Resampling.BICUBIC))


def test_a_textured_photo_reads_clean_and_its_added_noise_within_twenty_percent(
    textured_photo: NDArray[np.uint8],
) -> None:
    assert quality.measure(textured_photo, 0.0).noise < 2.0  # Immerkær's estimate: 5.3
    for sigma in (5.0, 10.0):
        assert quality.measure(noisy(textured_photo, sigma), 0.0).noise == pytest.approx(sigma, rel=0.2)


def test_sharpness_falls_with_blur_radius(photo: NDArray[np.uint8]) -> None:
    values = [quality.measure(blurred(photo, r) if r else photo, 0.0).sharpness for r in (0, 0.5, 1, 2, 3)]
    assert values == sorted(values, reverse=True)
    assert 0.55 < values[0] < 0.8 and values[2] < 0.5 and values[3] < 0.35


def test_a_flat_image_has_no_sharpness_and_no_noise() -> None:
    metrics = quality.measure(np.full((64, 64, 3), 77, np.uint8), 0.25)
    assert (metrics.sharpness, metrics.noise, metrics.resolution, metrics.jpeg_quality) == (0.0, 0.0, 0.25, None)


def test_the_pillow_image_path_measures_what_the_array_path_does(photo: NDArray[np.uint8]) -> None:
    assert quality.measure_image(Image.fromarray(photo), 512, 0.1) == quality.measure(photo, 0.1)
    grey = Image.fromarray(photo[..., 1])
    assert quality.measure_image(grey, 1024, 0.1).measured_at_scale == 0.5


@pytest.mark.parametrize("shape", [(2, 2), (5, 300, 3), (300, 7, 4), (40, 40)])
def test_tiny_and_thin_images_and_alpha_are_measured_without_error(shape: tuple[int, ...]) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    metrics = quality.measure(pixels, 0.0)
    assert 0.0 <= metrics.sharpness <= 1.0 and metrics.noise >= 0.0


def test_only_a_fixed_number_of_crops_is_read_whatever_the_size() -> None:
    big = np.zeros((2160, 3840, 3), np.uint8)
    assert quality.crops(big).shape == (9, 128, 128, 3)


CONDITIONED = ("jpeg_quality", "noise")


def test_a_degradation_aware_model_is_told_the_jpeg_quality_and_the_full_scale_noise(photo: NDArray[np.uint8]) -> None:
    pixels = noisy(photo, 8.0)
    full = quality.measure(pixels, 0.1, jpeg_tables(photo, 60))
    assert quality.degradation(full, pixels, CONDITIONED) == Degradation(jpeg_quality=60, noise=full.noise)
    # Measured on a 1/8 draft the noise reads low; the model gets it measured again on the pixels it upscales.
    draft = replace(full, noise=0.4, measured_at_scale=0.125)
    assert quality.degradation(draft, pixels, CONDITIONED) == Degradation(jpeg_quality=60, noise=full.noise)
    assert full.noise == pytest.approx(8.0, rel=0.2)


@pytest.mark.parametrize("conditions", [(), ("jpeg_quality",)])
def test_the_draft_noise_is_not_measured_again_for_a_model_that_does_not_read_it(
    photo: NDArray[np.uint8], conditions: tuple[str, ...]
) -> None:
    """A plain model (or one conditioned on the JPEG quality alone) ignores the noise: the value read on
    the draft is passed on as it is, and the full pixels are never cropped and measured again."""
    pixels = noisy(photo, 8.0)
    draft = replace(quality.measure(pixels, 0.1, jpeg_tables(photo, 60)), noise=0.4, measured_at_scale=0.125)
    assert quality.degradation(draft, pixels, conditions) == Degradation(jpeg_quality=60, noise=0.4)
