"""The evaluation protocol reproduces the literature's bicubic figures (shared/datasets/README.md)."""

from pathlib import Path

import numpy as np
import pytest

from models.evaluate import bicubic, read_image
from models.metrics import psnr_y

PUBLISHED = {
    ("Set5", 2): 33.66, ("Set14", 2): 30.24, ("BSD100", 2): 29.56,
    ("Set5", 4): 28.42, ("Set14", 4): 26.00, ("BSD100", 4): 25.96,
}  # fmt: skip


@pytest.mark.parametrize(("dataset", "scale"), sorted(PUBLISHED))
def test_bicubic_reproduces_the_published_psnr_within_0_02_db(shared_dir: Path, dataset: str, scale: int) -> None:
    folder = shared_dir / "datasets" / "eval" / dataset / f"x{scale}"
    scores = [
        psnr_y(bicubic(read_image(Path(str(hr).replace("_HR", "_LR"))), scale), read_image(hr), scale)
        for hr in sorted(folder.glob("*_HR.png"))
    ]
    assert len(scores) == {"Set5": 5, "Set14": 14, "BSD100": 100}[dataset]
    assert float(np.mean(scores)) == pytest.approx(PUBLISHED[(dataset, scale)], abs=0.02)


def test_bicubic_keeps_greyscale_images_greyscale() -> None:
    grey = np.zeros((4, 5), np.uint8)
    assert bicubic(grey, 2).shape == (8, 10)
