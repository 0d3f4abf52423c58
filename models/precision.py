"""Choosing the dtype a model runs in.

fp32 is the reference. A reduced precision is used by default only where it is both fast on the
device (bf16 on CPUs with native bf16 instructions; fp16 or bf16 on CUDA) and measured harmless for
that model: its Set5 PSNR-Y loss against fp32 is at most ``MAX_LOSS_DB``, as recorded in the model's
evaluation file by ``python -m models.evaluate --precision``. An explicit ``PRECISION`` wins.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from models.engine import Engine, ModelInfo
from models.loader import load_model
from models.registry import resolve

MAX_LOSS_DB = 0.05
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def recorded_losses(weights: Path) -> dict[str, float]:
    """Set5 PSNR-Y loss of each reduced precision against fp32, from ``<stem>.eval.json`` beside the
    weights (``python -m models.evaluate --precision --json …``); empty for an unmeasured file."""
    report = weights.with_name(weights.stem + ".eval.json")
    if not report.is_file():
        return {}
    return {k: float(v) for k, v in json.loads(report.read_text()).get("precision_loss_db", {}).items()}


def native_bf16_cpu(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when the CPU has bf16 arithmetic (AVX512-BF16 or AMX), where bf16 runs ~2-3× faster."""
    try:
        flags = cpuinfo.read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def candidates(device: torch.device, info: ModelInfo) -> list[str]:
    """Reduced precisions worth trying on ``device`` for this model, fastest first."""
    if device.type == "cuda":
        options = [("fp16", info.supports_half), ("bf16", info.supports_bfloat16 and torch.cuda.is_bf16_supported())]
        return [name for name, ok in options if ok]
    return ["bf16"] if info.supports_bfloat16 and native_bf16_cpu() else []


def choose(device: torch.device, info: ModelInfo, requested: str, measured_loss_db: dict[str, float]) -> torch.dtype:
    """``requested`` is ``auto`` or a key of ``DTYPES``; ``measured_loss_db`` maps dtype names to Set5 loss."""
    if requested != "auto":
        return DTYPES[requested]
    for name in candidates(device, info):
        if measured_loss_db.get(name, float("inf")) <= MAX_LOSS_DB:
            return DTYPES[name]
    return torch.float32


def served_engine(name: str, device: torch.device, requested: str = "auto") -> Engine:
    """The registered model ``name`` on ``device`` at the precision the service would run it in
    (``choose`` with its recorded losses): what benchmarks and cards measure."""
    spec = resolve(name)
    loaded = load_model(spec.path, name)
    return Engine(
        loaded.module, loaded.info, device, choose(device, loaded.info, requested, recorded_losses(spec.path))
    )
