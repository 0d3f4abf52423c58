from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

from models.train import main


def dataset(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for folder in ("T91", "BSD200"):
        (root / folder).mkdir(parents=True)
        for i in range(2):
            pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / folder / f"{i}.png")
    return root


def train(tmp_path: Path, data: Path, run: str, *extra: str) -> Path:
    out = tmp_path / f"{run}.safetensors"
    main([
        "--model", "vcsr-s-x2", "--steps", "6", "--batch", "2", "--patch", "8", "--data", str(data),
        "--eval-root", str(tmp_path / "no-eval"), "--run-dir", str(tmp_path / run), "--out", str(out),
        "--checkpoint-every", "2", "--log-every", "1", *extra,
    ])  # fmt: skip
    return out


def test_a_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(tmp_path: Path) -> None:
    data = dataset(tmp_path / "data")
    straight = train(tmp_path, data, "straight")
    assert not train(tmp_path, data, "resumed", "--stop-after", "3").exists()
    resumed = train(tmp_path, data, "resumed")
    a, b = load_file(str(straight)), load_file(str(resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], torch.zeros_like(a[k])) for k in a if k.startswith("tail"))
