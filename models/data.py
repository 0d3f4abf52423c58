"""Training pairs and a seeded, resumable patch sampler.

Low-resolution images are made from the high-resolution ones with Pillow's bicubic resize, which
reproduces the MATLAB ``imresize`` used to build the evaluation sets (shared/datasets/README.md).
Each training image also appears downscaled by 0.9…0.6, the usual augmentation for the 291-image set.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.utils.data
from numpy.typing import NDArray
from PIL import Image

from models.arch import VCSRConfig, condition_vector
from models.degrade import Applied, DegradationSettings, degrade, soft_pair

AUGMENT_FACTORS = (1.0, 0.9, 0.8, 0.7, 0.6)
_REPO = Path(__file__).resolve().parents[1]


def shared_root() -> Path:
    """The ``shared`` folder of datasets and third-party weights, which is never committed.

    ``$VCS_SHARED_DIR`` when set; else ``../shared`` beside this checkout; else, for a local clone
    (``git clone /work/main /tmp/x``), ``../shared`` beside the repository it was cloned from."""
    if os.environ.get("VCS_SHARED_DIR"):
        return Path(os.environ["VCS_SHARED_DIR"])
    beside = _REPO.parent / "shared"
    if beside.is_dir():
        return beside
    try:
        origin = subprocess.run(
            ["git", "-C", str(_REPO), "config", "--get", "remote.origin.url"],
            capture_output=True, text=True, check=False, timeout=5,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        origin = ""
    if origin and Path(origin).is_dir():
        candidate = Path(origin).resolve().parent / "shared"
        if candidate.is_dir():
            return candidate
    return beside


@dataclass(frozen=True)
class Pair:
    hr: torch.Tensor  # 3×(s·h)×(s·w) uint8
    lr: torch.Tensor  # 3×h×w uint8


def _to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.uint8).copy()).permute(2, 0, 1)


def make_pair(hr: Image.Image, scale: int) -> Pair:
    w, h = (hr.width // scale) * scale, (hr.height // scale) * scale
    hr = hr.crop((0, 0, w, h))
    lr = hr.resize((w // scale, h // scale), Image.Resampling.BICUBIC)
    return Pair(_to_tensor(hr), _to_tensor(lr))


def load_pairs(roots: list[Path], scale: int, patch: int) -> list[Pair]:
    pairs: list[Pair] = []
    for path in sorted(p for root in roots for p in root.glob("*.png")):
        with Image.open(path) as original:
            original.load()
            for factor in AUGMENT_FACTORS:
                size = (round(original.width * factor), round(original.height * factor))
                image = original if factor == 1.0 else original.resize(size, Image.Resampling.BICUBIC)
                if min(image.size) >= patch * scale:
                    pairs.append(make_pair(image, scale))
    if not pairs:
        raise FileNotFoundError(f"no training images of at least {patch * scale}px under {roots}")
    return pairs


class PatchSampler:
    """Random LR/HR patch batches with flips and transposes, from a ``numpy`` generator whose state
    is checkpointed so that a resumed run draws exactly the batches the uninterrupted run would."""

    def __init__(self, pairs: list[Pair], scale: int, patch: int, seed: int) -> None:
        self.pairs, self.scale, self.patch = pairs, scale, patch
        areas = np.array([p.lr.shape[1] * p.lr.shape[2] for p in pairs], dtype=np.float64)
        self.weights = areas / areas.sum()
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        s, p = self.scale, self.patch
        lrs, hrs = [], []
        for index in self.rng.choice(len(self.pairs), size=size, p=self.weights):
            pair = self.pairs[int(index)]
            y = int(self.rng.integers(0, pair.lr.shape[1] - p + 1))
            x = int(self.rng.integers(0, pair.lr.shape[2] - p + 1))
            lr = pair.lr[:, y : y + p, x : x + p]
            hr = pair.hr[:, s * y : s * (y + p), s * x : s * (x + p)]
            flip_h, flip_v, transpose = (bool(b) for b in self.rng.integers(0, 2, size=3))
            dims = [d for d, on in ((2, flip_h), (1, flip_v)) if on]
            if dims:
                lr, hr = lr.flip(dims), hr.flip(dims)
            if transpose:
                lr, hr = lr.transpose(1, 2), hr.transpose(1, 2)
            lrs.append(lr)
            hrs.append(hr)
        return torch.stack(lrs).float().div_(255), torch.stack(hrs).float().div_(255)

    def state(self) -> dict[str, object]:
        return dict(self.rng.bit_generator.state)

    def restore(self, state: dict[str, object]) -> None:
        self.rng.bit_generator.state = state


def load_hr_images(roots: list[Path], scale: int, patch: int) -> list[NDArray[np.uint8]]:
    """The training images and their 0.9…0.6 downscales as ``H×W×3`` uint8 arrays, sides cropped to
    multiples of ``scale``; those smaller than one high-resolution patch are left out."""
    images: list[NDArray[np.uint8]] = []
    for path in sorted(p for root in roots for p in (*root.glob("*.png"), *root.glob("*.webp"))):
        with Image.open(path) as original:
            original.load()
            for factor in AUGMENT_FACTORS:
                size = (round(original.width * factor), round(original.height * factor))
                image = original if factor == 1.0 else original.resize(size, Image.Resampling.BICUBIC)
                if min(image.size) >= patch * scale:
                    w, h = (image.width // scale) * scale, (image.height // scale) * scale
                    images.append(np.asarray(image.convert("RGB").crop((0, 0, w, h))).copy())
    if not images:
        raise FileNotFoundError(f"no training images of at least {patch * scale}px under {roots}")
    return images


class DegradedSampler:
    """Random high-resolution patches (flips, transposes) and their low-resolution versions made by
    ``models.degrade``: the same interface and checkpointable generator state as ``PatchSampler``."""

    def __init__(
        self,
        images: list[NDArray[np.uint8]],
        scale: int,
        patch: int,
        seed: int | np.random.SeedSequence,
        settings: DegradationSettings | None = None,
    ) -> None:
        self.images, self.scale, self.patch, self.settings = images, scale, patch, settings
        areas = np.array([im.shape[0] * im.shape[1] for im in images], dtype=np.float64)
        self.weights = areas / areas.sum()
        self.rng = np.random.default_rng(seed)

    def hr_patch(self) -> NDArray[np.uint8]:
        side = self.patch * self.scale
        image = self.images[int(self.rng.choice(len(self.images), p=self.weights))]
        y = self.scale * int(self.rng.integers(0, (image.shape[0] - side) // self.scale + 1))
        x = self.scale * int(self.rng.integers(0, (image.shape[1] - side) // self.scale + 1))
        crop = image[y : y + side, x : x + side]
        flip_h, flip_v, transpose = (bool(b) for b in self.rng.integers(0, 2, size=3))
        if flip_h:
            crop = crop[:, ::-1]
        if flip_v:
            crop = crop[::-1]
        if transpose:
            crop = crop.transpose(1, 0, 2)
        return np.ascontiguousarray(crop)

    def pair(self, hr: NDArray[np.uint8], applied: Applied) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
        """``hr``'s (low, high) resolution pair: degraded by the pipeline, or, with the settings' ``soft``
        share, a faithful soft pair (``models.degrade.soft_pair``: the target changes too). Without a
        ``soft`` share it draws exactly what earlier recipes drew."""
        soft = self.settings.soft if self.settings is not None else None
        if soft is not None and self.rng.random() < soft.p:
            hr, lr = soft_pair(hr, self.scale, self.rng, soft, applied)
            return lr, hr
        return degrade(hr, self.scale, self.rng, self.settings, applied), hr

    def sample(self, size: int) -> tuple[torch.Tensor, torch.Tensor, list[Applied]]:
        """A batch and, per sample, the degradation it ended with."""
        patches = [self.hr_patch() for _ in range(size)]
        applied = [Applied() for _ in patches]
        lrs, hrs = (
            list(t) for t in zip(*(self.pair(p, a) for p, a in zip(patches, applied, strict=True)), strict=True)
        )

        def stack(arrays: list[NDArray[np.uint8]]) -> torch.Tensor:
            return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255)

        return stack(lrs), stack(hrs), applied

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        lr, hr, _ = self.sample(size)
        return lr, hr

    def conditioned_batch(self, size: int, config: VCSRConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``batch`` with each sample's ``N×K`` condition values for a degradation-aware ``config``."""
        lr, hr, applied = self.sample(size)
        return lr, hr, torch.cat([condition_vector(config, a.as_measured()) for a in applied])

    def state(self) -> dict[str, object]:
        return dict(self.rng.bit_generator.state)

    def restore(self, state: dict[str, object]) -> None:
        self.rng.bit_generator.state = state


class DegradedBatches(torch.utils.data.IterableDataset[tuple[torch.Tensor, ...]]):
    """Endless ``DegradedSampler`` batches for a ``DataLoader`` with worker processes (the degradations
    run on the CPU): worker ``i`` of a run (re)started at ``start_step`` draws from the seed sequence
    ``(seed, start_step, i)``, so runs are reproducible, though a resumed run draws other batches than
    an uninterrupted one would (the single-process sampler is the one whose state is checkpointed).
    With a degradation-aware ``config``, each batch also carries its condition values."""

    def __init__(
        self,
        images: list[NDArray[np.uint8]],
        scale: int,
        patch: int,
        batch: int,
        seed: int,
        start_step: int,
        config: VCSRConfig | None = None,
        settings: DegradationSettings | None = None,
    ):
        super().__init__()
        self.images, self.scale, self.patch, self.batch = images, scale, patch, batch
        self.seed, self.start_step, self.config, self.settings = seed, start_step, config, settings

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        torch.set_num_threads(1)
        sampler = DegradedSampler(
            self.images,
            self.scale,
            self.patch,
            np.random.SeedSequence([self.seed, self.start_step, worker]),
            self.settings,
        )
        while True:
            if self.config is not None and self.config.conditions:
                yield sampler.conditioned_batch(self.batch, self.config)
            else:
                yield sampler.batch(self.batch)
