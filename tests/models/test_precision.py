from dataclasses import replace
from pathlib import Path

import pytest
import torch

from models import precision
from models.conditioning import bind
from models.engine import Engine, ModelInfo
from models.evaluate import CLEAN, engine_upscaler, evaluate_set, summarise
from models.int8 import Int8Engine, artefact_matches, artefact_path
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
        engine = bind(Engine(loaded.module, loaded.info, CPU, dtype), CLEAN)  # a conditioned one told "clean"
        scores[dtype] = summarise(evaluate_set(engine_upscaler(engine), set5, engine.scale))["psnr"]
    assert scores[torch.float32] - scores[torch.bfloat16] <= precision.MAX_LOSS_DB


def test_the_served_engine_runs_in_the_precision_the_service_would_choose() -> None:
    spec = BUILTIN["vcsr-m-x2"]
    ready = artefact_matches(artefact_path(spec.path), spec.path)
    info, measured = load_model(spec.path).info, precision.recorded_losses(spec.path)
    expected = precision.choose_precision(CPU, info, "auto", measured, ready)
    engine = precision.served_engine("vcsr-m-x2", CPU)
    if expected == precision.INT8:
        assert isinstance(engine, Int8Engine)
    else:
        assert isinstance(engine, Engine) and engine.dtype == precision.DTYPES[expected]
    forced = precision.served_engine("vcsr-m-x2", CPU, "fp32")
    assert forced.dtype == torch.float32 and forced.info.name == "vcsr-m-x2" and forced.scale == 2


@pytest.fixture
def cpuinfo(tmp_path: Path) -> Path:
    """A fake /proc/cpuinfo with AVX-512 VNNI and BF16 (edit its flags line to remove them)."""
    path = tmp_path / "cpuinfo"
    path.write_text("processor : 0\nflags : fpu sse2 avx2 avx512f avx512_vnni avx512_bf16\n")
    return path


def test_vnni_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    for flags, expected in (("avx512f avx512_vnni", True), ("avx2 avx_vnni", True), ("avx2 avx512f", False)):
        cpuinfo.write_text(f"processor : 0\nflags : fpu {flags}\n")
        assert precision.vnni_cpu(cpuinfo) is expected
    cpuinfo.write_text("processor : 0\nflags : avx2\nbugs : avx512_vnni_bug\n")  # only the flags line counts
    assert not precision.vnni_cpu(cpuinfo)
    assert not precision.vnni_cpu(tmp_path / "missing")


def test_int8_is_chosen_only_with_vnni_and_a_measured_loss_within_the_rule(bf16_cpu: None, cpuinfo: Path) -> None:
    def chosen(measured: dict[str, float], ready: bool = True) -> str:
        return precision.choose_precision(CPU, INFO, "auto", measured, ready, cpuinfo)

    within = {"int8": 0.04, "int8_worst_image": 0.15, "bf16": 0.01}
    assert chosen(within) == "int8"
    assert chosen(within | {"int8": 0.06}) == "bf16"  # measured, but the mean of a set is outside the rule
    assert chosen(within | {"int8_worst_image": 0.16}) == "bf16"  # one image loses too much
    assert chosen({"int8": 0.04, "bf16": 0.01}) == "bf16"  # the worst image never measured
    assert chosen({"bf16": 0.01}) == "bf16"  # never measured in int8
    assert chosen(within, ready=False) == "bf16"  # no up-to-date artefact
    assert chosen(within | {"int8": 0.06, "bf16": 0.06}) == "fp32"  # neither within the rule: fp32
    cpuinfo.write_text("flags : fpu avx2 avx512f avx512_bf16\n")
    assert chosen(within) == "bf16"  # no VNNI: int8 would be emulated


def test_int8_is_never_chosen_on_a_gpu(cpuinfo: Path) -> None:
    cuda = torch.device("cuda")
    assert precision.choose_precision(cuda, INFO, "auto", {"int8": 0.0}, True, cpuinfo) == "fp32"


def test_forcing_int8_without_a_measurement_is_refused_with_the_fix(cpuinfo: Path) -> None:
    with pytest.raises(precision.PrecisionUnavailableError, match=r"python -m models.quantize --model m") as caught:
        precision.choose_precision(CPU, INFO, "int8", {"bf16": 0.01}, True, cpuinfo)
    assert "PRECISION=int8 for model 'm'" in str(caught.value) and "PRECISION=auto" in str(caught.value)
    with pytest.raises(precision.PrecisionUnavailableError, match="no up-to-date"):
        precision.choose_precision(CPU, INFO, "int8", {"int8": 0.01}, False, cpuinfo)
    with pytest.raises(precision.PrecisionUnavailableError, match="CPUs only"):
        precision.choose_precision(torch.device("cuda"), INFO, "int8", {"int8": 0.01}, True, cpuinfo)


def test_forcing_int8_is_obeyed_whatever_the_cpu_and_the_measured_loss(cpuinfo: Path) -> None:
    cpuinfo.write_text("flags : fpu avx2\n")
    assert precision.choose_precision(CPU, INFO, "int8", {"int8": 0.2}, True, cpuinfo) == "int8"


def test_a_model_without_an_int8_build_is_refused_int8_by_the_engine_builder(tmp_path: Path) -> None:
    weights = tmp_path / "mine.safetensors"  # a copy of a bundled file: no artefact, no evaluation beside it
    weights.write_bytes(BUILTIN["vcsr-s-x2"].path.read_bytes())
    with pytest.raises(precision.PrecisionUnavailableError, match="python -m models.quantize"):
        precision.build_engine(load_model(weights), weights, CPU, "int8", {})
    assert precision.build_engine(load_model(weights), weights, CPU, "auto", {}).precision == "float32"


CONDITIONED = replace(INFO, conditions=("jpeg_quality", "noise"))


def test_a_degradation_aware_model_follows_the_same_int8_rule(bf16_cpu: None, cpuinfo: Path) -> None:
    """Its int8 artefact takes the condition values as a second input: measured within the rule, it is
    int8; unmeasured or outside the rule, bf16 or fp32 as any model; forced, obeyed."""
    within = {"int8": 0.0, "int8_worst_image": 0.0, "bf16": 0.01}
    assert precision.choose_precision(CPU, CONDITIONED, "auto", within, True, cpuinfo) == "int8"
    assert precision.choose_precision(CPU, CONDITIONED, "auto", within | {"int8": 0.06}, True, cpuinfo) == "bf16"
    assert precision.choose_precision(CPU, CONDITIONED, "auto", {"bf16": 0.06}, True, cpuinfo) == "fp32"
    assert precision.choose_precision(CPU, CONDITIONED, "int8", within, True, cpuinfo) == "int8"
