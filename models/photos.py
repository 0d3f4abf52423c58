"""The photographs no recipe was tuned on, as upscaling pairs: the int8 engine's bound on real photos.

``shared/datasets/photos`` holds camera JPEGs (evaluation only, never training or calibration). The first
six, each cut to a centre crop of ``LR_SIDE·scale`` pixels and Pillow-bicubic downscaled by ``scale``,
are where the precision rule and its test hold an int8 build to the service's acceptance bound
(``models.evaluate``, ``tests/models/test_int8_quality.py``): smooth, bright camera content that the
evaluation sets have little of.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from models.data import shared_root

LR_SIDE = 128
COUNT = 6
Pair = tuple[NDArray[np.uint8], NDArray[np.uint8]]  # (low-resolution input, high-resolution reference)


def photo_pairs(scale: int, shared: Path | None = None) -> list[Pair]:
    """A centre crop of each of the first ``COUNT`` photographs and its bicubic downscale by ``scale``."""
    pairs = []
    for path in sorted(((shared or shared_root()) / "datasets" / "photos").glob("*.jpg"))[:COUNT]:
        with Image.open(path) as photo:
            side = LR_SIDE * scale
            left, top = (photo.width - side) // 2, (photo.height - side) // 2
            hr = photo.convert("RGB").crop((left, top, left + side, top + side))
        pairs.append((np.asarray(hr.resize((LR_SIDE, LR_SIDE), Image.Resampling.BICUBIC)), np.asarray(hr)))
    return pairs
