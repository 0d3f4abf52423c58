"""The bundled models beat bicubic on Set5 by at least 2 dB PSNR-Y (the pipeline issue's bar)."""

from pathlib import Path

import pytest
import torch

from models.engine import Engine
from models.evaluate import engine_upscaler, evaluate_set, summarise
from models.loader import load_model
from models.registry import default_model_name, resolve


@pytest.mark.parametrize("scale", [2, 4])
def test_bundled_model_beats_bicubic_by_2_db_on_set5(shared_dir: Path, scale: int) -> None:
    loaded = load_model(resolve(default_model_name(scale)).path)
    engine = Engine(loaded.module, loaded.info, torch.device("cpu"))
    scores = evaluate_set(engine_upscaler(engine), shared_dir / "datasets" / "eval" / "Set5", scale)
    mean = summarise(scores)
    assert mean["bicubic_psnr"] == pytest.approx({2: 33.66, 4: 28.42}[scale], abs=0.02)
    assert mean["psnr"] >= mean["bicubic_psnr"] + 2.0
    assert all(s.psnr > s.bicubic_psnr for s in scores)
