"""Bring-your-own models: community architectures, built here with random weights and small sizes,
saved like their authors ship them (a plain state dict), load through spandrel with the right facts."""

from pathlib import Path
from typing import Any

import pytest
import torch
from spandrel.architectures.ESRGAN import ESRGAN
from spandrel.architectures.RCAN import RCAN
from spandrel.architectures.SPAN import SPAN
from spandrel.architectures.SwinIR import SwinIR

from models.engine import Engine, resolve_device
from models.loader import load_model

CASES: list[tuple[str, Any, str, int]] = [
    ("esrgan", lambda: ESRGAN(num_filters=16, num_blocks=1, scale=2), "ESRGAN", 2),
    ("span", lambda: SPAN(num_in_ch=3, num_out_ch=3, feature_channels=16, upscale=4), "SPAN", 4),
    ("rcan", lambda: RCAN(n_resgroups=1, n_resblocks=1, n_feats=16, scale=2), "RCAN", 2),
    (
        "swinir",
        lambda: SwinIR(
            img_size=16,
            embed_dim=12,
            depths=[1],
            num_heads=[2],
            window_size=4,
            upscale=2,
            upsampler="pixelshuffledirect",
        ),
        "SwinIR",
        2,
    ),
]


@pytest.mark.parametrize(("name", "build", "architecture", "scale"), CASES, ids=[c[0] for c in CASES])
def test_random_weight_community_models_load_and_upscale(
    tmp_path: Path, name: str, build: Any, architecture: str, scale: int
) -> None:
    torch.manual_seed(0)
    path = tmp_path / f"{name}.pth"
    torch.save(build().state_dict(), path)
    loaded = load_model(path)
    assert loaded.info.architecture == architecture and loaded.info.scale == scale
    engine = Engine(loaded.module, loaded.info, resolve_device("cpu"))
    out = engine.run(torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8))
    assert out.shape == (2, 3, 16 * scale, 16 * scale) and out.dtype == torch.uint8
