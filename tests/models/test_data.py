from pathlib import Path

import numpy as np
import torch
from PIL import Image

from models.data import PatchSampler, load_pairs, make_pair


def write_images(folder: Path, count: int = 3) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (120, 100, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def test_pairs_are_made_with_pillow_bicubic_at_exact_multiples() -> None:
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (31, 45, 3), dtype=np.uint8))
    pair = make_pair(image, 4)
    assert pair.hr.shape == (3, 28, 44) and pair.lr.shape == (3, 7, 11)


def test_sampler_batches_have_matching_patches_and_resume_identically(tmp_path: Path) -> None:
    pairs = load_pairs([write_images(tmp_path / "set")], scale=2, patch=16)
    sampler = PatchSampler(pairs, 2, 16, seed=7)
    lr, hr = sampler.batch(4)
    assert lr.shape == (4, 3, 16, 16) and hr.shape == (4, 3, 32, 32)
    assert float(lr.min()) >= 0.0 and float(hr.max()) <= 1.0

    state = sampler.state()
    expected = sampler.batch(4)
    resumed = PatchSampler(pairs, 2, 16, seed=999)
    resumed.restore(state)
    again = resumed.batch(4)
    assert torch.equal(expected[0], again[0]) and torch.equal(expected[1], again[1])
