"""The default quality policy's routing table on fixed images, measured as the flow measures an upload
it upscales (``inspection.inspect`` → ``inspection.decode`` → ``quality.measure`` → the policy)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageFilter

from configs.quality_policy import load_policy
from deployments.flow import inspection, quality

pytest.importorskip("skimage")
from skimage import data

MAX_PIXELS = 10_000_000


def texture(name: str, scale: int) -> NDArray[np.uint8]:
    """skimage's grass or gravel tinted as a photo's would be, bicubic-downscaled ``scale``×: clean
    detail in every block, as in Urban100's low-resolution images."""
    grey = np.asarray(getattr(data, name)(), dtype=np.float32)
    tinted = np.clip(grey[..., None] * np.array([1.0, 0.85, 0.7]) + np.array([10, 20, 30]), 0, 255)
    image = Image.fromarray(tinted.astype(np.uint8))
    return np.asarray(image.resize((image.width // scale, image.height // scale), Image.Resampling.BICUBIC))


def photo() -> NDArray[np.uint8]:
    return np.asarray(Image.fromarray(data.astronaut()).resize((256, 256), Image.Resampling.BICUBIC))


def with_noise(image: NDArray[np.uint8], sigma: float) -> NDArray[np.uint8]:
    noise = np.random.default_rng(0).normal(0, sigma, image.shape)
    return np.clip(np.round(image + noise), 0, 255).astype(np.uint8)


def upload(image: NDArray[np.uint8], fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def routed(data_: bytes) -> str:
    probe = inspection.inspect(data_, MAX_PIXELS)
    pixels = inspection.decode(probe, MAX_PIXELS).pixels
    metrics = quality.measure(pixels, inspection.quality_score(probe.width, probe.height), probe.quantization)
    return load_policy().decide(metrics.to_dict(), 0.5).rule


CASES = {
    "grass, x4 downscale": (lambda: upload(texture("grass", 4)), "clean"),
    "gravel, x2 downscale": (lambda: upload(texture("gravel", 2)), "clean"),
    "photo": (lambda: upload(photo()), "clean"),
    "photo, noise sigma 3": (lambda: upload(with_noise(photo(), 3)), "clean"),
    "photo, noise sigma 6": (lambda: upload(with_noise(photo(), 6)), "noisy"),
    "grass x4, noise sigma 6": (lambda: upload(with_noise(texture("grass", 4), 6)), "noisy"),
    "photo, JPEG 50": (lambda: upload(photo(), "JPEG", quality=50), "jpeg-artefacts"),
    "photo, noise 5 then JPEG 75": (lambda: upload(with_noise(photo(), 5), "JPEG", quality=75), "jpeg-artefacts"),
    "photo, JPEG 90": (lambda: upload(photo(), "JPEG", quality=90), "clean"),
    "photo, blur radius 2": (
        lambda: upload(np.asarray(Image.fromarray(photo()).filter(ImageFilter.GaussianBlur(2)))),
        "blurred",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_default_policy_routes_each_fixed_image_by_its_real_degradation(case: str) -> None:
    make, rule = CASES[case]
    assert routed(make()) == rule
