"""No-reference quality metrics of an upload, cheap enough to compute on every request.

``measure`` returns ``ImageQuality``:

- ``resolution``: the seed's score, pixels relative to 4K UHD (``decode.quality_score``), unchanged.
- ``sharpness`` in [0, 1], higher is sharper: one minus the perceptual blur of Crete et al. (2007,
  "The blur effect: perception and estimation with a new no-reference perceptual blur metric"). The
  image is blurred again with a 9-tap box filter along each axis; a sharp image loses much of its
  neighbour-to-neighbour variation to that blur, a blurred one little (typical readings of sharp and
  blurred photos: README, "Metrics on every upload"). Noise raises it (noise is sharp), which is why
  noise is measured separately.
- ``jpeg_quality`` in 1…100 (``None`` unless the file is a JPEG): the IJG/libjpeg quality whose
  scaled standard tables are nearest, in log ratio, to the file's own quantisation tables (Pillow's
  ``Image.quantization``). Exact for files written by libjpeg, Pillow, OpenCV, ImageMagick; an
  equivalent quality for encoders with their own tables (cameras, Photoshop).
- ``noise``: the standard deviation of white noise per colour channel, in 8-bit levels: Immerkær's
  operator (1996: a 3×3 operator that cancels planes and edges to first order) on each channel, then
  per 16×16 block the part of that fine detail the three channels do not share (``noise_sigma``), so
  dense texture does not read as noise; the 10th-percentile block is reported. ``python -m
  bench.routing`` measures how close it reads to the σ added, and what clean textured images read
  (README, "Metrics on every upload").
  Greyscale images use Immerkær's per-channel estimate, which texture can raise.

Cost: the metrics read only a fixed grid of at most 9 crops of 128×128 pixels, so a 4K image costs
the same as a 1080p one (``python -m bench.quality`` measures it; README, "Metrics on every upload"). An image that is
upscaled is measured on its decoded pixels; one stored as uploaded on the image its integrity check
decoded, which for a JPEG is Pillow's 1/8-scale draft: ``measured_at_scale`` says which (sharpness
and noise then describe the image seen at that scale; noise in particular reads lower, since each
draft pixel averages an 8×8 block).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from configs import routing_metrics
from deployments.contracts.values import Degradation

CROP = 128
MAX_CROPS_PER_SIDE = 3
BLOCK = 16
NOISE_PERCENTILE = 10.0
# The 10th percentile of the 16×16-block estimates of pure white noise, as a fraction of its σ
# (calibrated on synthetic white noise): divided out, so flat noisy content reads σ
# (tests/deployments/flow/test_quality.py holds it to that; bench.routing measures it on photos).
PERCENTILE_BIAS = 0.89
# The same for the colour estimate (the smallest eigenvalue of a block's 3×3 channel covariance),
# calibrated the same way.
COLOUR_PERCENTILE_BIAS = 0.80
# Blocks this close to black or white are left out: clipping there hides noise.
CLIP_MARGIN = 16.0
_BT601 = np.array([0.299, 0.587, 0.114], dtype=np.float32)

# The IJG standard tables (ITU-T T.81 Annex K), natural (row-major) order as Pillow reports them.
STANDARD_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
], dtype=np.float64)  # fmt: skip
STANDARD_CHROMA = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
    *([99] * 32),
], dtype=np.float64)  # fmt: skip


@dataclass(frozen=True)
class ImageQuality:
    resolution: float
    sharpness: float
    jpeg_quality: int | None
    noise: float
    measured_at_scale: float = 1.0

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)

    def routing_values(self) -> dict[str, float | int | None]:
        """The values the quality policy routes on, by their names in ``configs.routing_metrics``."""
        return {m.name: getattr(self, m.name) for m in routing_metrics.ROUTING_METRICS}


def ijg_table(standard: NDArray[np.float64], quality: int) -> NDArray[np.float64]:
    """libjpeg's ``jpeg_quality_scaling``: the standard table scaled for ``quality`` (baseline, 1…255)."""
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return np.clip(np.floor((standard * scale + 50) / 100), 1, 255)


_CANDIDATES = np.arange(1, 101)
_LOG_LUMA = np.log(np.stack([ijg_table(STANDARD_LUMA, int(q)) for q in _CANDIDATES]))
_LOG_CHROMA = np.log(np.stack([ijg_table(STANDARD_CHROMA, int(q)) for q in _CANDIDATES]))


def jpeg_quality(quantization: Mapping[int, Sequence[int]] | None) -> int | None:
    """The IJG quality whose tables best match ``quantization`` (Pillow's ``image.quantization``)."""
    if not quantization or 0 not in quantization or len(quantization[0]) != 64:
        return None
    error = np.abs(_LOG_LUMA - np.log(np.maximum(np.asarray(quantization[0], dtype=np.float64), 1))).mean(axis=1)
    if 1 in quantization and len(quantization[1]) == 64:
        chroma = np.log(np.maximum(np.asarray(quantization[1], dtype=np.float64), 1))
        error = error + np.abs(_LOG_CHROMA - chroma).mean(axis=1)
    return int(_CANDIDATES[int(np.argmin(error))])


def _starts(length: int) -> list[int]:
    if length <= CROP:
        return [0]
    count = min(MAX_CROPS_PER_SIDE, length // CROP)
    return [round(i * (length - CROP) / max(count - 1, 1)) for i in range(count)]


def _boxes(width: int, height: int) -> list[tuple[int, int, int, int]]:
    h, w = min(CROP, height), min(CROP, width)
    return [(x, y, x + w, y + h) for y in _starts(height) for x in _starts(width)]


def crops(pixels: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Up to 3×3 crops of 128×128 spread evenly over the image (one crop of the whole image when it is
    smaller), stacked as ``N×h×w×C`` float32; alpha is dropped, greyscale has ``C`` = 1."""
    image = pixels[..., None] if pixels.ndim == 2 else pixels[..., :3]
    boxes = _boxes(image.shape[1], image.shape[0])
    return np.stack([image[top:bottom, left:right] for left, top, right, bottom in boxes]).astype(np.float32)


def _crop_pixels(crop: Image.Image) -> NDArray[np.float32]:
    if crop.mode.startswith("I"):  # 16-bit greyscale, scaled to 8-bit levels as decoding does
        return np.asarray(crop, dtype=np.float32) / 257.0
    return np.asarray(crop.convert("L" if crop.mode in ("1", "L", "LA") else "RGB"), dtype=np.float32)


def image_crops(image: Image.Image) -> NDArray[np.float32]:
    """``crops`` of a Pillow image, converting only the cropped pixels (greyscale stays one channel)."""
    stack = np.stack([_crop_pixels(image.crop(box)) for box in _boxes(image.width, image.height)])
    return stack[..., None] if stack.ndim == 3 else stack


def luma(stack: NDArray[np.float32]) -> NDArray[np.float32]:
    """BT.601 luma (0…255) of ``N×h×w×C`` crops as ``N×h×w``; greyscale is its own luma."""
    return stack[..., 0] if stack.shape[-1] == 1 else stack @ _BT601


def box9(stack: NDArray[np.float32], axis: int) -> NDArray[np.float32]:
    """A 9-tap moving average along ``axis`` of ``N×h×w`` crops (edges repeated), from a running sum."""
    pad = [(0, 0), (0, 0), (0, 0)]
    pad[axis] = (5, 4)
    sums = np.cumsum(np.pad(stack, pad, mode="edge"), axis=axis, dtype=np.float32)
    window = sums[:, 9:] - sums[:, :-9] if axis == 1 else sums[:, :, 9:] - sums[:, :, :-9]
    return (window / 9).astype(np.float32, copy=False)


def sharpness(stack: NDArray[np.float32]) -> float:
    """One minus Crete's perceptual blur of the luma crops (the worse of the two axes): the share of
    neighbour-to-neighbour variation that survives a 9-tap box blur is the blur."""
    y = luma(stack)
    blur = 0.0
    for axis in (1, 2):
        if y.shape[axis] <= 9:
            continue
        d = np.abs(np.diff(y, axis=axis))
        variation = float(d.sum())
        if variation <= 0:
            return 0.0  # a flat image has no detail to be sharp
        removed = float(np.maximum(d - np.abs(np.diff(box9(y, axis), axis=axis)), 0).sum())
        blur = max(blur, (variation - removed) / variation)
    return round(1.0 - blur, 4)


def _block_means(a: NDArray[np.float32], bh: int, bw: int) -> NDArray[np.float32]:
    """Means of the ``BLOCK``×``BLOCK`` blocks of ``N×C×h×w`` arrays (the top-left ``bh×bw`` of them)."""
    n, channels = a.shape[:2]
    cut = a[..., : bh * BLOCK, : bw * BLOCK]
    return np.asarray(cut.reshape(n, channels, bh, BLOCK, bw, BLOCK).mean(axis=(3, 5)), dtype=np.float32)


def _blocks(a: NDArray[np.float32], bh: int, bw: int) -> NDArray[np.float32]:
    """The ``BLOCK``×``BLOCK`` blocks of ``N×C×h×w`` arrays as ``(N·bh·bw)×C×BLOCK²`` pixel vectors."""
    n, channels = a.shape[:2]
    cut = a[..., : bh * BLOCK, : bw * BLOCK].reshape(n, channels, bh, BLOCK, bw, BLOCK)
    return np.ascontiguousarray(cut.transpose(0, 2, 4, 1, 3, 5)).reshape(n * bh * bw, channels, BLOCK * BLOCK)


def immerkaer(c: NDArray[np.float32]) -> NDArray[np.float32]:
    """Immerkær's operator [[1,-2,1],[-2,4,-2],[1,-2,1]] over ``N×C×h×w`` (valid part, ``h-2×w-2``): a
    second difference along each axis in turn. It cancels planes and straight edges; white noise of σ
    comes out with standard deviation 6σ."""
    d = c[..., :-2] - 2 * c[..., 1:-1] + c[..., 2:]
    return np.asarray(d[..., :-2, :] - 2 * d[..., 1:-1, :] + d[..., 2:, :], dtype=np.float32)


def noise_sigma(stack: NDArray[np.float32]) -> float:
    """σ of the noise of each colour channel, from the part of the fine detail the channels do not share.

    Per 16×16 block, the 3×3 covariance of the three channels' Immerkær residuals: picture structure,
    however fine (brick, windows, foliage), moves the channels together and fills at most two of its
    three directions, while noise drawn per channel adds σ²·36 to every direction. The smallest
    eigenvalue is therefore the noise alone even in blocks full of texture, where Immerkær's per-channel
    estimate read σ 4–9 on clean, bicubic-downscaled building photos. The 10th percentile of the blocks
    (not near black or white, where clipping hides noise) is reported. Limit: noise that is identical in
    the three channels (a grey noise field) is indistinguishable from grey texture this way and reads
    low; camera noise and noise added per channel are seen. A JPEG's colour noise is mostly gone with its
    subsampled, coarsely quantised chroma (σ 5 then quality 75 reads ~0.3): its quality, read from the
    tables, is what tells such an image apart. Greyscale images keep Immerkær's estimate."""
    _, h, w, channels = stack.shape
    if h < 3 or w < 3:
        return 0.0
    c = np.ascontiguousarray(stack.transpose(0, 3, 1, 2))
    r = immerkaer(c)
    if channels != 3:
        return _immerkaer_sigma(c, r)
    bh, bw = max((h - 2) // BLOCK, 1), max((w - 2) // BLOCK, 1)
    if (h - 2) < BLOCK or (w - 2) < BLOCK:  # smaller than one block: the whole crop is the block
        vectors = r.reshape(r.shape[0], 3, -1)
        keep = np.ones(r.shape[0], dtype=bool)
    else:
        vectors = _blocks(r, bh, bw)
        mean = _blocks(c[..., 1:-1, 1:-1], bh, bw).mean(axis=2)
        keep = ((mean > CLIP_MARGIN) & (mean < 255 - CLIP_MARGIN)).all(axis=1)
    covariance = np.einsum("bip,bjp->bij", vectors, vectors) / vectors.shape[2]
    smallest = np.linalg.eigvalsh(covariance[keep] if keep.any() else covariance)[:, 0]
    sigma = np.sqrt(np.maximum(smallest, 0.0)) / 6
    return round(float(np.percentile(sigma, NOISE_PERCENTILE)) / COLOUR_PERCENTILE_BIAS, 3)


def _immerkaer_sigma(c: NDArray[np.float32], r: NDArray[np.float32]) -> float:
    """Immerkær's σ per 16×16 block of each channel, the 10th percentile of the blocks (not near black or
    white), the median over the channels: the estimate for images without three colour channels."""
    r = np.abs(r)
    _, channels, h, w = c.shape
    bh, bw = (h - 2) // BLOCK, (w - 2) // BLOCK
    if bh == 0 or bw == 0:
        per_channel = r.mean(axis=(0, 2, 3))
    else:
        sigma, mean = _block_means(r, bh, bw), _block_means(c[..., 1:-1, 1:-1], bh, bw)
        keep = (mean > CLIP_MARGIN) & (mean < 255 - CLIP_MARGIN)
        per_channel = np.array([
            np.percentile(sigma[:, k][keep[:, k]] if keep[:, k].any() else sigma[:, k], NOISE_PERCENTILE)
            for k in range(channels)
        ]) / PERCENTILE_BIAS  # fmt: skip
    return round(float(np.median(per_channel)) * math.sqrt(math.pi / 2) / 6, 3)


def measure(
    pixels: NDArray[np.uint8], resolution: float, quantization: Mapping[int, Sequence[int]] | None = None
) -> ImageQuality:
    """All metrics of one decoded image; ``quantization`` is the JPEG's tables (``None`` otherwise)."""
    return _metrics(crops(pixels), resolution, quantization, 1.0)


def measure_image(
    image: Image.Image, full_width: int, resolution: float, quantization: Mapping[int, Sequence[int]] | None = None
) -> ImageQuality:
    """``measure`` of a decoded Pillow image, possibly a draft smaller than the upload (``full_width``)."""
    return _metrics(image_crops(image), resolution, quantization, round(image.width / max(full_width, 1), 4))


def _metrics(
    stack: NDArray[np.float32], resolution: float, quantization: Mapping[int, Sequence[int]] | None, scale: float
) -> ImageQuality:
    return ImageQuality(
        resolution=resolution,
        sharpness=sharpness(stack),
        jpeg_quality=jpeg_quality(quantization),
        noise=noise_sigma(stack),
        measured_at_scale=scale,
    )


def degradation(metrics: ImageQuality, pixels: NDArray[np.uint8], conditions: Collection[str]) -> Degradation:
    """What a degradation-aware model is told about an upload being upscaled (``pixels``: its decoded
    image; ``conditions``: what the routed model reads, ``ModelSummary.conditions``): the JPEG quality and
    noise of ``metrics``. Noise measured on a 1/8 draft reads low (each draft pixel averages a block), and
    such a model was trained on full-scale values, so it is measured again on ``pixels`` then (the same
    crops; 6–8 ms of CPU on a 4K image here), but only for a model conditioned on noise: any other model
    ignores the value, and would pay that time on every draft-routed upload it upscales."""
    remeasure = metrics.measured_at_scale != 1.0 and "noise" in conditions
    noise = noise_sigma(crops(pixels)) if remeasure else metrics.noise
    return Degradation(jpeg_quality=metrics.jpeg_quality, noise=noise)
