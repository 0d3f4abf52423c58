"""The int8 CPU engine: a bundled model quantized by ``models.quantize``, run by OpenVINO.

Same contract as every engine (``models.engine.TileEngine.run``): ``N×3×h×w`` uint8 tiles in,
``N×3×(s·h)×(s·w)`` uint8 tiles out, on the CPU. The uint8 → [0, 1] scaling on the way in and the clamp,
×255, round-half-to-even and uint8 conversion on the way out are compiled into the graph (OpenVINO's
pre/post-processing), so no float copy of a batch is made in Python. The graph gives its output
channels-last (``N×s·h×s·w×3``, the layout the CPU plugin computes in, so no reorder is added) and
``run`` returns it as a channel-first view: pasting it into the H×W×C output image then copies whole
rows of pixels, where a channel-first tile was scattered three bytes apart (1080p ×4: 80 → 35-40 ms of
paste of a four-tile batch, the same pixels).

A degradation-aware network (``ModelInfo.conditions``) is exported with a second input, its ``N×K``
condition values (``models.arch.condition_values``), in float; the engine is bound to one image's values
(``Int8Engine.bound_to``, by ``models.conditioning.bind``) and feeds them with every batch, so the
contract stays the same. Every binding shares its artefact's compiled models (``Compiled``).

Why OpenVINO: on CPUs with VNNI an int8 multiply-add does twice the work of a bf16 one, and OpenVINO's
CPU plugin runs a quantized convolution network at ~2× torch's bf16 speed on this machine, where ONNX
Runtime's int8 reached only ~1.2× (shared/NOTES.md, "CPU inference engines"); it is Apache-2.0 and runs
on Intel and AMD x86 alike.

Shapes: a batch shape (N, h, w) met a second time is compiled for that static shape and kept (the
``MAX_STATIC_SHAPES`` most recently used), because a static shape lets the plugin pick its kernels and
buffers once (~9 % faster than a dynamic-shape model here on 1024² tiles); any other shape runs on one
model compiled for dynamic shapes, so no request waits for a compilation (~0.45 s) and memory stays
bounded: each static 1024²-class shape holds ~450 MB of feature-map buffers (measured: 1.1 → 2.5 GB of
peak RSS for four shapes), and balanced tile layouts bring a new shape with every new image size. The
thread count is the caller's ``torch.get_num_threads()`` — the setting the upscaler applies to its
forward thread — and is part of every compiled model's key, so a reconfigured count takes effect on the
next pass.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import torch
from numpy.typing import NDArray
from openvino.preprocess import PrePostProcessor

from models.engine import ModelInfo, TileEngine, check_batch

ARTEFACT_SUFFIX = ".int8.xml"
DIGEST_KEY = ["vcsr", "weights_sha256"]  # where the artefact records its weights (rt_info)
MAX_STATIC_SHAPES = 2  # static batch shapes kept per model; each holds its own feature-map buffers
# Smaller batches always run on the dynamic model: the health check's 32² probe, every few seconds,
# must not take a static slot from the service's tiles, and small passes gain little from one.
MIN_STATIC_PIXELS = 256 * 256
# What ``models.quantize`` leaves in float (the residual stream, the bicubic base; a real-world or
# conditioned network's first convolution and ×2 last one) runs in fp32, as it was measured: the CPU
# plugin's default on bf16-capable CPUs would round it to bf16, ~10-15 % faster at ×2 but 0.93 dB lost on
# a photograph (vcsr-m-x2, when its last convolution was float).
COMPILE_CONFIG = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32", "ENABLE_CPU_PINNING": False}


def artefact_path(weights: Path) -> Path:
    """Where ``models.quantize`` writes the int8 model of ``weights`` (``<stem>.int8.xml`` + ``.bin``)."""
    return weights.with_name(weights.stem + ARTEFACT_SUFFIX)


def weights_digest(weights: Path) -> str:
    """SHA-256 of a weights file: the artefact records the weights it was quantized from."""
    return hashlib.sha256(weights.read_bytes()).hexdigest()


def artefact_matches(artefact: Path, weights: Path) -> bool:
    """True when ``artefact`` exists and was built from ``weights`` as they are now: a retrained file
    with a stale artefact must not be served from the old network."""
    if not artefact.is_file() or not weights.is_file():
        return False
    model = ov.Core().read_model(artefact)
    return bool(model.has_rt_info(DIGEST_KEY)) and model.get_rt_info(DIGEST_KEY).astype(str) == weights_digest(weights)


def with_uint8_io(model: ov.Model) -> ov.Model:
    """``model`` (float [0, 1] in, unclamped float NCHW out) wrapped to take uint8 NCHW pixels and give
    uint8 NHWC ones."""
    ppp = PrePostProcessor(model)
    ppp.input(0).tensor().set_element_type(ov.Type.u8)
    ppp.input(0).preprocess().convert_element_type(ov.Type.f32).scale(255.0)

    def to_uint8(node: ov.Output) -> ov.Output:
        scaled = ops.multiply(ops.clamp(node, 0.0, 1.0), np.float32(255.0))
        return ops.convert(ops.round(scaled, "half_to_even"), ov.Type.u8).output(0)

    ppp.output(0).postprocess().custom(to_uint8)
    ppp.output(0).model().set_layout(ov.Layout("NCHW"))
    ppp.output(0).tensor().set_layout(ov.Layout("NHWC"))
    built: ov.Model = ppp.build()
    return built


class Compiled:
    """The compiled models of one artefact and the lock over them, shared by every binding of its engine
    (``Int8Engine.bound_to``): a binding costs no compilation."""

    def __init__(self, core: ov.Core, model: ov.Model) -> None:
        self._core = core
        self._model = model
        self._requests: OrderedDict[tuple[int, ...], ov.InferRequest] = OrderedDict()  # static shapes
        self._seen: set[tuple[int, ...]] = set()  # shapes met once (cleared when large)
        self._dynamic: tuple[int, ov.InferRequest] | None = None  # (threads, request)
        # One pass at a time per artefact: an infer request's output buffer is reused by its next pass.
        self.lock = threading.Lock()

    def _compile(self, shape: list[int] | None, threads: int) -> ov.InferRequest:
        model = self._model
        if shape is not None:
            model = model.clone()
            shapes = {0: shape}
            if len(model.inputs) > 1:  # a conditioned network's N×K values
                shapes[1] = [shape[0], model.inputs[1].get_partial_shape()[1].get_length()]
            model.reshape(shapes)
        config = {**COMPILE_CONFIG, "INFERENCE_NUM_THREADS": threads}
        return self._core.compile_model(model, "CPU", config).create_infer_request()

    def request(self, shape: tuple[int, ...], threads: int) -> ov.InferRequest:
        """The request for a batch of pixel ``shape`` (N, 3, h, w); call it under ``lock``."""
        key = (*shape, threads)
        request = self._requests.get(key)
        if request is not None:
            self._requests.move_to_end(key)
            return request
        if key in self._seen and shape[0] * shape[2] * shape[3] >= MIN_STATIC_PIXELS:
            request = self._requests[key] = self._compile(list(shape), threads)
            while len(self._requests) > MAX_STATIC_SHAPES:
                self._requests.popitem(last=False)
            return request
        if len(self._seen) > 4096:  # one-off image sizes must not grow this forever
            self._seen.clear()
        self._seen.add(key)
        if self._dynamic is None or self._dynamic[0] != threads:
            self._dynamic = (threads, self._compile(None, threads))
        return self._dynamic[1]

    @property
    def static_shapes(self) -> list[tuple[int, ...]]:
        return list(self._requests)


class Int8Engine(TileEngine):
    """An int8 artefact (``artefact_path(weights)``) behind the engine contract, on this CPU. A
    degradation-aware model's artefact takes its condition values as a second input (``N×K`` floats):
    its engine runs once bound to one image's values (``bound_to``, through ``models.conditioning.bind``)."""

    def __init__(self, artefact: Path, info: ModelInfo, core: ov.Core | None = None) -> None:
        if not artefact.is_file():
            raise FileNotFoundError(f"no int8 model at {artefact}; build it with `python -m models.quantize`")
        self.info = info
        self.device = torch.device("cpu")
        self.dtype = torch.int8
        self.artefact = artefact
        core = core or ov.Core()
        self._compiled = Compiled(core, with_uint8_io(core.read_model(artefact)))
        self.condition: NDArray[np.float32] | None = None  # 1×K, a conditioned model's bound values

    def bound_to(self, condition: torch.Tensor) -> Int8Engine:
        """This engine for one image of ``condition`` values (``1×K``, ``models.arch.condition_values``):
        a shallow copy sharing the compiled models."""
        if len(condition.reshape(-1)) != len(self.info.conditions):
            raise ValueError(f"{self.info.name} takes {len(self.info.conditions)} condition values, got {condition}")
        bound = copy.copy(self)
        bound.condition = condition.reshape(1, -1).numpy().astype(np.float32)
        return bound

    @property
    def static_shapes(self) -> list[tuple[int, ...]]:
        """The (N, 3, h, w, threads) keys compiled for their static shape, least recently used first."""
        return self._compiled.static_shapes

    def _inputs(self, tiles: torch.Tensor) -> dict[int, NDArray[np.generic]]:
        inputs: dict[int, NDArray[np.generic]] = {0: np.ascontiguousarray(tiles.numpy())}
        if self.info.conditions:
            if self.condition is None:
                raise ValueError(f"{self.info.name} is conditioned on {self.info.conditions}: bind it first")
            inputs[1] = np.repeat(self.condition, tiles.shape[0], axis=0)
        return inputs

    def run(self, tiles: torch.Tensor) -> torch.Tensor:
        check_batch(tiles)
        inputs = self._inputs(tiles)
        with self._compiled.lock:
            request = self._compiled.request(tuple(tiles.shape), torch.get_num_threads())
            request.infer(inputs)
            out = np.array(request.get_output_tensor(0).data, copy=True)
        return torch.from_numpy(out).permute(0, 3, 1, 2)  # channels-last memory, as the paste wants it
