"""A randomised, seeded degradation pipeline: realistic low-resolution inputs for training.

Real uploads are not clean bicubic downscales: they were blurred by a lens or a resize, carry sensor
noise and were saved as JPEG, often more than once. Following Real-ESRGAN's "second-order" model
(Wang et al. 2021), a clean high-resolution patch is downscaled with a random resampling filter and
then degraded in up to two rounds, each of

    blur (isotropic or anisotropic Gaussian kernel) → resize jitter → noise (Gaussian or Poisson) → JPEG

with the second round rarer and milder. A share of samples stays clean (the plain bicubic pair the
evaluation sets use) so the model keeps its fidelity on clean inputs. Every random choice comes from
the ``numpy.random.Generator`` passed in, so a seed fixes the whole pipeline.

``Applied`` records what a sample ended with, as the service would measure it on the upload: the
quality of the last JPEG and the noise σ added after it (a JPEG's subsampled chroma takes away the
per-channel noise the service's estimate sees, so noise before a JPEG counts as none, and so does a grey
noise field, the same in every channel, which that estimate does not see either). A degradation-
aware network is trained on those values. Recording draws nothing from the generator.

Images are ``H×W×3`` uint8 arrays. Blur runs as a ``torch`` convolution, resizes and JPEG through
Pillow (whose bicubic filter is the one that made the evaluation sets), noise with ``numpy``.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from PIL import Image

Array = NDArray[np.uint8]
RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "lanczos": Image.Resampling.LANCZOS,
}


@dataclass
class Applied:
    """The degradation a sample ended with (filled in by ``degrade``): see the module's docstring."""

    jpeg_quality: int | None = None
    noise: float = 0.0

    def as_measured(self) -> dict[str, float | None]:
        return {"jpeg_quality": self.jpeg_quality, "noise": self.noise}


@dataclass(frozen=True)
class RoundSettings:
    """Probabilities and ranges of one degradation round (σ in low-resolution pixels / 8-bit levels)."""

    blur_p: float
    blur_sigma: tuple[float, float]
    resize_p: float
    resize_range: tuple[float, float]
    noise_p: float
    gaussian_sigma: tuple[float, float]
    poisson_scale: tuple[float, float]
    jpeg_p: float
    jpeg_quality: tuple[int, int]


@dataclass(frozen=True)
class SoftSettings:
    """Faithful soft content (``soft_pair``): a share of samples whose high-resolution patch is itself
    band-limited (a Gaussian of ``blur_sigma`` high-resolution pixels, with ``blur_p``) and, with
    ``contrast_p``, has its contrast about the mean scaled by a factor in ``contrast``; its low-resolution
    version is the plain bicubic downscale, saved as JPEG (``jpeg_p``, ``jpeg_quality``) or left clean.

    Why: camera photographs at web sizes are soft and full of low-amplitude real detail (skin, sky, walls),
    which the general pipeline rarely shows under a JPEG without noise hidden beneath it (noise before a
    JPEG is recorded as none), so a model learns to flatten such content at a given quality as if it were
    noise. Here nothing is hidden: the condition is exact and the target is as smooth as the input."""

    p: float
    blur_p: float = 0.7
    blur_sigma: tuple[float, float] = (0.5, 1.6)
    contrast_p: float = 0.5
    contrast: tuple[float, float] = (0.3, 1.0)
    jpeg_p: float = 0.85
    jpeg_quality: tuple[int, int] = (30, 95)


@dataclass(frozen=True)
class DegradationSettings:
    """The whole pipeline's distribution; the defaults are the recipe of ``vcsr-real-x2/x4``. ``soft``
    (off by default, so earlier recipes draw exactly what they drew) adds ``SoftSettings``' share."""

    soft: SoftSettings | None = None
    clean_p: float = 0.3
    downscale_modes: dict[str, float] = field(
        default_factory=lambda: {"bicubic": 0.7, "bilinear": 0.1, "area": 0.1, "lanczos": 0.1}
    )
    first: RoundSettings = RoundSettings(
        blur_p=0.3, blur_sigma=(0.2, 2.0), resize_p=0.2, resize_range=(0.6, 1.0), noise_p=0.5,
        gaussian_sigma=(1.0, 12.0), poisson_scale=(0.05, 1.5), jpeg_p=0.9, jpeg_quality=(25, 95),
    )  # fmt: skip
    second_p: float = 0.2
    second: RoundSettings = RoundSettings(
        blur_p=0.2, blur_sigma=(0.2, 1.0), resize_p=0.3, resize_range=(0.7, 1.0), noise_p=0.3,
        gaussian_sigma=(1.0, 6.0), poisson_scale=(0.05, 0.5), jpeg_p=0.9, jpeg_quality=(40, 95),
    )  # fmt: skip


def gaussian_kernel(sigma_x: float, sigma_y: float, theta: float, size: int | None = None) -> NDArray[np.float64]:
    """A normalised 2-D Gaussian, stretched by ``sigma_x``/``sigma_y`` and rotated by ``theta`` radians
    (isotropic when the two σ are equal); odd side ``size``, default ≈ 3σ each side."""
    if size is None:
        size = 2 * math.ceil(3 * max(sigma_x, sigma_y)) + 1
    half = size // 2
    ys, xs = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float64)
    c, s = math.cos(theta), math.sin(theta)
    u, v = c * xs + s * ys, -s * xs + c * ys
    kernel = np.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return np.asarray(kernel / kernel.sum(), dtype=np.float64)


def convolve(image: Array, kernel: NDArray[np.float64]) -> Array:
    """``image`` filtered by ``kernel`` per channel, borders reflected, rounded back to uint8."""
    x = torch.tensor(image).permute(2, 0, 1)[:, None].float()
    pad = kernel.shape[0] // 2
    if pad >= min(image.shape[:2]):
        x = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    else:
        x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    out = F.conv2d(x, torch.from_numpy(kernel).float()[None, None])
    return out[:, 0].permute(1, 2, 0).round_().clamp_(0, 255).to(torch.uint8).numpy()


def random_blur(image: Array, sigma: tuple[float, float], rng: np.random.Generator) -> Array:
    """Isotropic Gaussian blur half the time, else anisotropic at a random angle."""
    sx = float(rng.uniform(*sigma))
    if rng.random() < 0.5:
        return convolve(image, gaussian_kernel(sx, sx, 0.0))
    sy = float(rng.uniform(*sigma))
    return convolve(image, gaussian_kernel(sx, sy, float(rng.uniform(0, math.pi))))


def resize(image: Array, size: tuple[int, int], mode: str) -> Array:
    """``image`` resized to ``size`` = (width, height) with Pillow's ``mode`` filter."""
    return np.asarray(Image.fromarray(image).resize(size, RESAMPLE[mode]))


def random_mode(rng: np.random.Generator, weights: dict[str, float] | None = None) -> str:
    modes = weights or dict.fromkeys(RESAMPLE, 1.0)
    names, p = list(modes), np.array(list(modes.values()), dtype=np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def gaussian_noise(image: Array, sigma: float, rng: np.random.Generator, grey: bool = False) -> Array:
    """Additive white Gaussian noise of ``sigma`` 8-bit levels (one field for all channels if ``grey``)."""
    shape = (*image.shape[:2], 1) if grey else image.shape
    noisy = image.astype(np.float32) + rng.normal(0.0, sigma, size=shape).astype(np.float32)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def poisson_noise(image: Array, scale: float, rng: np.random.Generator) -> Array:
    """Shot noise: Poisson counts at 8-bit level, the deviation scaled by ``scale`` (σ = scale·√level)."""
    pixels = image.astype(np.float32)
    shot = rng.poisson(pixels).astype(np.float32) - pixels
    return np.clip(np.round(pixels + scale * shot), 0, 255).astype(np.uint8)


def jpeg(image: Array, quality: int) -> Array:
    """``image`` saved as a baseline JPEG at ``quality`` with Pillow (4:2:0 for colour; an ``H×W×1``
    image as greyscale) and decoded again."""
    grey = image.ndim == 3 and image.shape[2] == 1
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if grey else image).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        decoded_array = np.asarray(decoded.convert("L" if grey else "RGB"))
    return decoded_array[..., None] if grey else decoded_array


def degrade_round(
    image: Array, settings: RoundSettings, rng: np.random.Generator, applied: Applied | None = None
) -> Array:
    """One round: blur, resize jitter (down and back up), noise, JPEG, each with its probability."""
    applied = applied if applied is not None else Applied()
    if rng.random() < settings.blur_p:
        image = random_blur(image, settings.blur_sigma, rng)
    if rng.random() < settings.resize_p:
        h, w = image.shape[:2]
        f = float(rng.uniform(*settings.resize_range))
        small = resize(image, (max(1, round(w * f)), max(1, round(h * f))), random_mode(rng))
        image = resize(small, (w, h), random_mode(rng))
    if rng.random() < settings.noise_p:
        if rng.random() < 0.7:
            sigma = float(rng.uniform(*settings.gaussian_sigma))
            grey = bool(rng.random() < 0.3)
            image = gaussian_noise(image, sigma, rng, grey)
            sigma = 0.0 if grey else sigma  # one field in all channels: the service's estimate does not see it
        else:
            scale = float(rng.uniform(*settings.poisson_scale))
            image = poisson_noise(image, scale, rng)
            sigma = scale * float(np.sqrt(image.mean()))  # shot noise's σ at the image's mean level
        applied.noise = float(np.hypot(applied.noise, sigma))
    if rng.random() < settings.jpeg_p:
        applied.jpeg_quality = int(rng.integers(settings.jpeg_quality[0], settings.jpeg_quality[1] + 1))
        applied.noise = 0.0
        image = jpeg(image, applied.jpeg_quality)
    return image


def soft_pair(
    hr: Array, scale: int, rng: np.random.Generator, soft: SoftSettings, applied: Applied | None = None
) -> tuple[Array, Array]:
    """``hr`` made soft as ``soft`` says (the new target) and its low-resolution upload: the bicubic
    downscale, maybe a JPEG, no blur or noise on top; ``applied`` records the JPEG's quality."""
    applied = applied if applied is not None else Applied()
    if rng.random() < soft.blur_p:
        sigma = float(rng.uniform(*soft.blur_sigma))
        hr = convolve(hr, gaussian_kernel(sigma, sigma, 0.0))
    if rng.random() < soft.contrast_p:
        factor = float(rng.uniform(*soft.contrast))
        mean = hr.reshape(-1, hr.shape[2]).mean(axis=0)
        hr = np.clip(np.round(mean + factor * (hr.astype(np.float32) - mean)), 0, 255).astype(np.uint8)
    lr = resize(hr, (hr.shape[1] // scale, hr.shape[0] // scale), "bicubic")
    if rng.random() < soft.jpeg_p:
        applied.jpeg_quality = int(rng.integers(soft.jpeg_quality[0], soft.jpeg_quality[1] + 1))
        lr = jpeg(lr, applied.jpeg_quality)
    return hr, lr


SOFT_MIX = DegradationSettings(soft=SoftSettings(p=0.3))
"""The default recipe with a 30 % share of faithful soft content: ``models.train --mix soft``."""

JPEG_MIX = DegradationSettings(
    soft=SoftSettings(p=0.3, jpeg_p=1.0, jpeg_quality=(25, 85)),
    clean_p=0.0,
    first=replace(DegradationSettings.first, jpeg_p=1.0, jpeg_quality=(25, 85)),
    second=replace(DegradationSettings.second, jpeg_p=1.0, jpeg_quality=(40, 85)),
)
"""What the JPEG specialist is sent (the policy's JPEG uploads, q ≤ 80): ``models.train --mix jpeg``. The
soft mix with every sample ending in a JPEG of q25–85 (no clean share; blur, resize jitter and noise under
the JPEG as in the default recipe: a first try with them halved lost 0.1-0.2 dB on blurred JPEGs)."""


def degrade(
    hr: Array,
    scale: int,
    rng: np.random.Generator,
    settings: DegradationSettings | None = None,
    applied: Applied | None = None,
) -> Array:
    """A realistic low-resolution version of ``hr`` (sides divisible by ``scale``), 1/scale its size;
    ``applied``, when given, is filled in with what the sample ended with."""
    settings = settings or DegradationSettings()
    size = (hr.shape[1] // scale, hr.shape[0] // scale)
    if rng.random() < settings.clean_p:
        return resize(hr, size, "bicubic")
    lr = resize(hr, size, random_mode(rng, settings.downscale_modes))
    lr = degrade_round(lr, settings.first, rng, applied)
    if rng.random() < settings.second_p:
        lr = degrade_round(lr, settings.second, rng, applied)
    return lr
