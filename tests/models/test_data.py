import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import models.data as data
from models.data import PatchSampler, load_pairs, make_pair, shared_root


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


def test_the_shared_folder_comes_from_the_environment_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCS_SHARED_DIR", str(tmp_path))
    assert shared_root() == tmp_path


def test_a_local_clone_finds_the_shared_folder_beside_its_origin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    origin, clone = tmp_path / "work" / "main", tmp_path / "elsewhere" / "x"
    (tmp_path / "work" / "shared").mkdir(parents=True)
    origin.mkdir()
    subprocess.run(["git", "init", "-q", str(origin)], check=True)
    subprocess.run(["git", "-C", str(origin), "commit", "-q", "--allow-empty", "-m", "x"], check=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t"})  # fmt: skip
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
    monkeypatch.delenv("VCS_SHARED_DIR", raising=False)
    monkeypatch.setattr(data, "_REPO", clone)
    assert shared_root() == (tmp_path / "work" / "shared").resolve()
    monkeypatch.setattr(data, "_REPO", origin)
    assert shared_root() == tmp_path / "work" / "shared"
