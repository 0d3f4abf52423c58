from pathlib import Path

import pytest
import torch

from models import precision
from models.engine import Engine, ModelInfo
from models.evaluate import engine_upscaler, evaluate_set, summarise
from models.loader import load_model
from models.registry import BUILTIN

INFO = ModelInfo("m", "VCSR", 2, 0, 10, supports_half=True, supports_bfloat16=True)
CPU = torch.device("cpu")


@pytest.fixture
def bf16_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "native_bf16_cpu", lambda: True)


def test_cpu_flags_are_read(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags : fpu avx512f avx512_bf16\n")
    assert precision.native_bf16_cpu(cpuinfo)
    cpuinfo.write_text("flags : fpu avx2\n")
    assert not precision.native_bf16_cpu(cpuinfo)
    assert not precision.native_bf16_cpu(tmp_path / "missing")


def test_bf16_is_chosen_on_a_bf16_cpu_only_when_measured_harmless(bf16_cpu: None) -> None:
    assert precision.choose(CPU, INFO, "auto", {"bf16": 0.01}) == torch.bfloat16
    assert precision.choose(CPU, INFO, "auto", {"bf16": 0.06}) == torch.float32
    assert precision.choose(CPU, INFO, "auto", {}) == torch.float32


def test_a_model_without_bf16_support_stays_in_fp32(bf16_cpu: None) -> None:
    info = ModelInfo("m", "X", 2, 0, 10, supports_half=False, supports_bfloat16=False)
    assert precision.choose(CPU, info, "auto", {"bf16": 0.0}) == torch.float32


def test_cpus_without_bf16_stay_in_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "native_bf16_cpu", lambda: False)
    assert precision.choose(CPU, INFO, "auto", {"bf16": 0.0}) == torch.float32


def test_an_explicit_precision_wins() -> None:
    assert precision.choose(CPU, INFO, "bf16", {}) == torch.bfloat16
    assert precision.choose(CPU, INFO, "fp32", {"bf16": 0.0}) == torch.float32


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_bf16_loses_at_most_0_05_db_on_set5_for_bundled_models(shared_dir: Path, name: str) -> None:
    set5 = shared_dir / "datasets" / "eval" / "Set5"
    scores = {}
    for dtype in (torch.float32, torch.bfloat16):
        loaded = load_model(BUILTIN[name].path)
        engine = Engine(loaded.module, loaded.info, CPU, dtype)
        scores[dtype] = summarise(evaluate_set(engine_upscaler(engine), set5, engine.scale))["psnr"]
    assert scores[torch.float32] - scores[torch.bfloat16] <= precision.MAX_LOSS_DB


def test_the_served_engine_runs_in_the_precision_the_service_would_choose() -> None:
    spec = BUILTIN["vcsr-m-x2"]
    expected = precision.choose(CPU, load_model(spec.path).info, "auto", precision.recorded_losses(spec.path))
    assert precision.served_engine("vcsr-m-x2", CPU).dtype == expected
    forced = precision.served_engine("vcsr-m-x2", CPU, "fp32")
    assert forced.dtype == torch.float32 and forced.info.name == "vcsr-m-x2" and forced.scale == 2
