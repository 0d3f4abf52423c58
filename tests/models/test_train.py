from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import models.train
from models.arch import VCSRConfig
from models.data import DegradedSampler
from models.degrade import SOFT_MIX, DegradationSettings
from models.loader import load_model
from models.registry import ModelSpec
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


def test_a_real_world_fine_tune_starts_from_the_bundled_weights_and_resumes_exactly(tmp_path: Path) -> None:
    data = dataset(tmp_path / "data")
    real = ("--degradation", "real", "--init", "vcsr-s-x2")
    straight = train(tmp_path, data, "real-straight", *real)
    assert not train(tmp_path, data, "real-resumed", *real, "--stop-after", "3").exists()
    resumed = train(tmp_path, data, "real-resumed", *real)
    a, b = load_file(str(straight)), load_file(str(resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)
    bundled = load_file(str(Path(__file__).parents[2] / "models" / "weights" / "vcsr-s-x2.safetensors"))
    assert all(a[k].shape == bundled[k].shape for k in a)
    assert max(float((a[k] - bundled[k]).abs().max()) for k in a) < 0.05  # six small steps from the start


def test_a_time_budget_fixes_the_step_count_after_calibration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models.train, "CALIBRATION_STEPS", 8)
    data = dataset(tmp_path / "data")
    out = train(tmp_path, data, "budget", "--degradation", "real", "--time-budget", "0.001", "--steps", "100000")
    assert out.exists()  # the budget (not 100 000 steps) ended the run


def test_a_degradation_aware_fine_tune_widens_the_plain_head_trains_on_conditions_and_resumes_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = VCSRConfig(scale=2, channels=32, blocks=4, conditions=("jpeg_quality", "noise"))
    monkeypatch.setitem(
        models.train.CANDIDATES, "tiny-c-x2", ModelSpec("tiny-c-x2", tmp_path / "c.safetensors", "", config)
    )
    data = dataset(tmp_path / "data")
    args = ("--model", "tiny-c-x2", "--degradation", "real", "--init", "vcsr-s-x2")
    straight = train(tmp_path, data, "c-straight", *args)
    assert not train(tmp_path, data, "c-resumed", *args, "--stop-after", "3").exists()
    a, b = load_file(str(straight)), load_file(str(train(tmp_path, data, "c-resumed", *args)))
    assert all(torch.equal(a[k], b[k]) for k in a)
    bundled = load_file(str(Path(__file__).parents[2] / "models" / "weights" / "vcsr-s-x2.safetensors"))
    assert a["head.weight"].shape == (32, 5, 3, 3) and bundled["head.weight"].shape == (32, 3, 3, 3)
    assert float((a["head.weight"][:, :3] - bundled["head.weight"]).abs().max()) < 0.05
    assert float(a["head.weight"][:, 3:].abs().max()) > 0  # the condition planes' weights were trained
    assert load_model(straight).module.config.conditions == ("jpeg_quality", "noise")  # type: ignore[union-attr]


def test_the_soft_mix_trains_on_the_soft_share_and_resumes_exactly(tmp_path: Path) -> None:
    data = dataset(tmp_path / "data")
    seen: list[DegradationSettings | None] = []
    original = DegradedSampler.__init__

    def spy(self: DegradedSampler, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        seen.append(self.settings)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DegradedSampler, "__init__", spy)
        straight = train(tmp_path, data, "soft", "--degradation", "real", "--mix", "soft")
    assert seen == [SOFT_MIX] and SOFT_MIX.soft is not None
    assert not train(
        tmp_path, data, "soft-resumed", "--degradation", "real", "--mix", "soft", "--stop-after", "3"
    ).exists()
    resumed = train(tmp_path, data, "soft-resumed", "--degradation", "real", "--mix", "soft")
    a, b = load_file(str(straight)), load_file(str(resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)
