"""The CPU's int8 convolution peak, measured through OpenVINO (the int8 engine's runtime).

PyTorch has no fast int8 convolution on CPUs, so the limit the int8 engine is held to is timed on a
network of one large 3×3 convolution with int8 activations and weights (``FakeQuantize`` on both, which
OpenVINO's CPU plugin runs as an int8 convolution with VNNI where the CPU has it), in the engine's own
compile settings and thread count.
"""

from __future__ import annotations

import time

import numpy as np
import openvino as ov
import openvino.opset13 as ops

from models.int8 import COMPILE_CONFIG

SHAPES = ((4, 64, 128), (2, 128, 128))  # (batch, channels, side), as bench.engine's bf16 peak


def quantized_conv(batch: int, channels: int, side: int) -> ov.Model:
    """``FakeQuantize(x) ⊛ FakeQuantize(w)``: one int8 3×3 convolution, ``batch×channels×side×side``."""
    x = ops.parameter([batch, channels, side, side], ov.Type.f32)
    lo, hi = np.float32(0.0), np.float32(1.0)
    xq = ops.fake_quantize(x, lo, hi, lo, hi, 256)
    weights = np.random.default_rng(0).uniform(-1.0, 1.0, (channels, channels, 3, 3)).astype(np.float32)
    wlo, whi = np.float32(-1.0), np.float32(1.0)
    wq = ops.fake_quantize(ops.constant(weights), wlo, whi, wlo, whi, 255)
    y = ops.convolution(xq, wq, [1, 1], [1, 1], [1, 1], [1, 1])
    return ov.Model([y], [x], "int8-conv3x3")


def int8_peak_gflops(threads: int, seconds: float) -> dict[str, float]:
    """Best GFLOP/s (2 per multiply-add) of the int8 3×3 convolutions in ``SHAPES`` on ``threads``."""
    core, best = ov.Core(), 0.0
    for batch, channels, side in SHAPES:
        compiled = core.compile_model(
            quantized_conv(batch, channels, side), "CPU", {**COMPILE_CONFIG, "INFERENCE_NUM_THREADS": threads}
        )
        request = compiled.create_infer_request()
        x = np.random.default_rng(1).random((batch, channels, side, side), dtype=np.float32)
        request.infer({0: x})
        fastest, spent = float("inf"), 0.0
        while spent < seconds / len(SHAPES):
            started = time.perf_counter()
            request.infer({0: x})
            elapsed = time.perf_counter() - started
            fastest, spent = min(fastest, elapsed), spent + elapsed
        best = max(best, 2 * batch * channels * channels * 9 * side * side / fastest)
    return {"conv3x3": best / 1e9, "peak": best / 1e9}
