"""The bundled default models reach VDSR's published PSNR-Y and beat bicubic on every evaluation image.

The full three-set evaluation is recorded in ``<model>.eval.json`` (``python -m models.evaluate``);
re-running Set5 here proves the file describes these weights.
"""

import json
from pathlib import Path

import pytest
import torch

from models.engine import Engine
from models.evaluate import engine_upscaler, evaluate_set, summarise
from models.loader import load_model
from models.registry import default_model_name, resolve

VDSR = {2: {"Set5": 37.53, "Set14": 33.03, "BSD100": 31.90}, 4: {"Set5": 31.35, "Set14": 28.01, "BSD100": 27.29}}


@pytest.mark.parametrize("scale", [2, 4])
def test_the_default_model_reaches_vdsr_on_every_set_and_beats_bicubic_on_every_image(scale: int) -> None:
    spec = resolve(default_model_name(scale))
    report = json.loads(spec.path.with_name(spec.name + ".eval.json").read_text())
    assert report["model"] == spec.name and report["scale"] == scale
    for set_name, bar in VDSR[scale].items():
        result = report["sets"][set_name]
        assert result["mean"]["psnr"] >= bar, (set_name, result["mean"]["psnr"])
        worse = [i["image"] for i in result["images"] if i["psnr"] <= i["bicubic_psnr"]]
        assert not worse, (set_name, worse)


@pytest.mark.parametrize("scale", [2, 4])
def test_the_recorded_scores_are_these_weights(shared_dir: Path, scale: int) -> None:
    spec = resolve(default_model_name(scale))
    recorded = json.loads(spec.path.with_name(spec.name + ".eval.json").read_text())["sets"]["Set5"]["mean"]
    loaded = load_model(spec.path)
    engine = Engine(loaded.module, loaded.info, torch.device("cpu"))
    scores = evaluate_set(engine_upscaler(engine), shared_dir / "datasets" / "eval" / "Set5", scale)
    assert summarise(scores)["psnr"] == pytest.approx(recorded["psnr"], abs=0.01)
