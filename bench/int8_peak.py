"""The CPU's int8 convolution peak, measured through OpenVINO (the int8 engine's runtime).

PyTorch has no fast int8 convolution on CPUs, so the limit the int8 engine is held to is timed on a
chain of large 3×3 convolutions with int8 activations and weights (``FakeQuantize`` before each, which
OpenVINO's CPU plugin runs as int8 convolutions with VNNI where the CPU has it, requantizing each output
in place, as in the served networks), in the engine's own compile settings and thread count. A single
convolution between float tensors measures the float↔int8 conversions as much as the arithmetic
(436 GFLOP/s here, below what the served networks reach).
"""

from __future__ import annotations

import time

import numpy as np
import openvino as ov
import openvino.opset13 as ops

from models.int8 import COMPILE_CONFIG

SHAPES = ((4, 64, 128), (2, 128, 128))  # (batch, channels, side), as bench.engine's bf16 peak
DEPTH = 8  # convolutions in the chain


def quantized_convs(batch: int, channels: int, side: int) -> ov.Model:
    """``DEPTH`` times ``FakeQuantize(x) ⊛ FakeQuantize(w)``: int8 3×3 convolutions, ``batch×channels×side²``."""
    x = ops.parameter([batch, channels, side, side], ov.Type.f32)
    lo, hi = np.float32(0.0), np.float32(1.0)
    scale = np.float32(1.0 / (9 * channels))  # keeps each output in the next quantizer's range
    rng = np.random.default_rng(0)
    y: ov.Node = x
    for _ in range(DEPTH):
        weights = (rng.uniform(-1.0, 1.0, (channels, channels, 3, 3)) * scale).astype(np.float32)
        wq = ops.fake_quantize(ops.constant(weights), -scale, scale, -scale, scale, 255)
        y = ops.convolution(ops.fake_quantize(y, lo, hi, lo, hi, 256), wq, [1, 1], [1, 1], [1, 1], [1, 1])
    return ov.Model([y], [x], "int8-conv3x3-chain")


def int8_peak_gflops(threads: int, seconds: float) -> dict[str, float]:
    """Best GFLOP/s (2 per multiply-add) of the int8 3×3 convolution chains of ``SHAPES`` on ``threads``."""
    core, best = ov.Core(), 0.0
    for batch, channels, side in SHAPES:
        compiled = core.compile_model(
            quantized_convs(batch, channels, side), "CPU", {**COMPILE_CONFIG, "INFERENCE_NUM_THREADS": threads}
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
        best = max(best, DEPTH * 2 * batch * channels * channels * 9 * side * side / fastest)
    return {"conv3x3": best / 1e9, "peak": best / 1e9}
