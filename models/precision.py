"""Choosing the precision, and so the engine, a model runs in.

fp32 is the reference. A reduced precision is used by default only where it is both fast on the
device and measured harmless for that model, as recorded in the model's evaluation file by
``python -m models.evaluate --precision``:

- int8 (``models.int8.Int8Engine``, OpenVINO) on CPUs with VNNI int8 instructions, for a model with an
  up-to-date int8 artefact (``python -m models.quantize``) whose mean PSNR-Y loss against fp32 is at most
  ``MAX_LOSS_DB`` on each of Set5, Set14 and BSD100 (recorded as ``int8``: the worst set's mean) and
  at most ``MAX_IMAGE_LOSS_DB`` on every one of their images (``int8_worst_image``), the bound the
  service's acceptance check puts on any one photograph: post-training int8 has a noise floor that
  smooth, high-PSNR images feel most (up to 0.5 dB on a 51-dB crop), which a mean alone hides. The
  same two bounds hold against bf16 on the six photographs of ``models.photos``, as that check
  measures (recorded beside the sets, and in the two figures);
- else bf16 on CPUs with native bf16 instructions, fp16 or bf16 on CUDA (``models.engine.Engine``,
  PyTorch), where the Set5 loss is at most ``MAX_LOSS_DB``;
- else fp32.

An explicit ``PRECISION`` wins; ``PRECISION=int8`` for a model that has no int8 artefact or no int8
measurement (a community model, a retrained file) is refused with ``PrecisionUnavailableError``, which
names the commands that make one. A degradation-aware model (``ModelInfo.conditions``) follows the same
rule: its int8 artefact takes the condition values as a second input (``models.int8``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from models.engine import Engine, ModelInfo, TileEngine
from models.int8 import Int8Engine, artefact_matches, artefact_path
from models.loader import LoadedModel, load_model
from models.registry import resolve

MAX_LOSS_DB = 0.05
MAX_IMAGE_LOSS_DB = 0.15  # int8 only: the worst single image of the evaluation sets
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
INT8 = "int8"
INT8_WORST_IMAGE = "int8_worst_image"  # the key of int8's worst per-image loss in the evaluation file
PRECISIONS = ("auto", *DTYPES, INT8)
CPUINFO = Path("/proc/cpuinfo")


class PrecisionUnavailableError(ValueError):
    """An explicitly requested precision that this model or device cannot run in."""

    def __init__(self, model: str, precision: str, reason: str, fix: str) -> None:
        super().__init__(f"PRECISION={precision} for model {model!r}: {reason}; {fix}")
        self.model = model
        self.precision = precision


def recorded_losses(weights: Path) -> dict[str, float]:
    """PSNR-Y loss of each reduced precision against fp32, from ``<stem>.eval.json`` beside the weights
    (``python -m models.evaluate --precision --json …``); empty for an unmeasured file."""
    report = weights.with_name(weights.stem + ".eval.json")
    if not report.is_file():
        return {}
    return {k: float(v) for k, v in json.loads(report.read_text()).get("precision_loss_db", {}).items()}


def _cpu_flags(cpuinfo: Path) -> set[str]:
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[-1].split()}


def native_bf16_cpu(cpuinfo: Path = CPUINFO) -> bool:
    """True when the CPU has bf16 arithmetic (AVX512-BF16 or AMX), where bf16 runs ~2-3× faster."""
    return bool(_cpu_flags(cpuinfo) & {"avx512_bf16", "amx_bf16"})


def vnni_cpu(cpuinfo: Path = CPUINFO) -> bool:
    """True when the CPU has int8 dot-product instructions (AVX512-VNNI, AVX-VNNI or AMX), where an
    int8 multiply-add does twice the work of a bf16 one; without them int8 is emulated and no faster."""
    return bool(_cpu_flags(cpuinfo) & {"avx512_vnni", "avx_vnni", "amx_int8"})


def candidates(device: torch.device, info: ModelInfo) -> list[str]:
    """Reduced PyTorch precisions worth trying on ``device`` for this model, fastest first."""
    if device.type == "cuda":
        options = [("fp16", info.supports_half), ("bf16", info.supports_bfloat16 and torch.cuda.is_bf16_supported())]
        return [name for name, ok in options if ok]
    return ["bf16"] if info.supports_bfloat16 and native_bf16_cpu() else []


def choose(device: torch.device, info: ModelInfo, requested: str, measured_loss_db: dict[str, float]) -> torch.dtype:
    """The PyTorch engine's dtype: ``requested`` is ``auto`` or a key of ``DTYPES``; ``measured_loss_db``
    maps dtype names to their Set5 loss."""
    if requested != "auto":
        return DTYPES[requested]
    for name in candidates(device, info):
        if measured_loss_db.get(name, float("inf")) <= MAX_LOSS_DB:
            return DTYPES[name]
    return torch.float32


def int8_within_rule(measured_loss_db: dict[str, float]) -> bool:
    """Whether the recorded int8 losses are within the rule (module docstring); False when unmeasured."""
    return (
        measured_loss_db.get(INT8, float("inf")) <= MAX_LOSS_DB
        and measured_loss_db.get(INT8_WORST_IMAGE, float("inf")) <= MAX_IMAGE_LOSS_DB
    )


def choose_precision(
    device: torch.device,
    info: ModelInfo,
    requested: str,
    measured_loss_db: dict[str, float],
    int8_ready: bool,
    cpuinfo: Path = CPUINFO,
) -> str:
    """``int8`` or a key of ``DTYPES`` (the rule in the module docstring). ``int8_ready``: the model has
    an int8 artefact built from its current weights."""
    if requested == INT8:
        _check_int8_forced(device, info, measured_loss_db, int8_ready)
        return INT8
    harmless = int8_within_rule(measured_loss_db)
    if requested == "auto" and device.type == "cpu" and int8_ready and harmless and vnni_cpu(cpuinfo):
        return INT8
    dtype = choose(device, info, requested, measured_loss_db)
    return next(name for name, candidate in DTYPES.items() if candidate == dtype)


def _check_int8_forced(device: torch.device, info: ModelInfo, measured: dict[str, float], ready: bool) -> None:
    if device.type != "cpu":
        raise PrecisionUnavailableError(
            info.name, INT8, f"the int8 engine runs on CPUs only, the device is {device}", "use PRECISION=auto"
        )
    if not ready or INT8 not in measured:
        raise PrecisionUnavailableError(
            info.name,
            INT8,
            "it has no int8 model built from its weights with a measured quality loss"
            + ("" if ready else " (no up-to-date <name>.int8.xml beside the weights)"),
            f"build and measure one (`python -m models.quantize --model {info.name}`, then `python -m "
            f"models.evaluate --model {info.name} --precision --json <weights dir>/{info.name}.eval.json`; "
            "bundled VCSR models only), or set PRECISION=auto",
        )


def build_engine(
    loaded: LoadedModel, weights: Path, device: torch.device, requested: str, measured_loss_db: dict[str, float]
) -> TileEngine:
    """The engine the rule picks for ``loaded`` (read from ``weights``) on ``device``."""
    artefact = artefact_path(weights)
    ready = device.type == "cpu" and artefact_matches(artefact, weights)
    chosen = choose_precision(device, loaded.info, requested, measured_loss_db, ready)
    if chosen == INT8:
        return Int8Engine(artefact, loaded.info)
    return Engine(loaded.module, loaded.info, device, DTYPES[chosen])


def served_engine(name: str, device: torch.device, requested: str = "auto") -> TileEngine:
    """The registered model ``name`` on ``device`` in the engine and precision the service would run it
    in (``build_engine`` with its recorded losses): what benchmarks and cards measure."""
    spec = resolve(name)
    return build_engine(load_model(spec.path, name), spec.path, device, requested, recorded_losses(spec.path))
