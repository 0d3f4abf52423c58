"""Build the int8 artefacts of the bundled models from their safetensors weights.

    python -m models.quantize [--model vcsr-m-x2 …] [--out DIR]

Recipe: OpenVINO's converter, then NNCF's post-training quantization of the OpenVINO model (NNCF is
Intel's Apache-2.0 quantization library; its OpenVINO backend needs no compiled extension and
calibrates in seconds):

- int8 per-channel symmetric weights; int8 per-tensor activations, asymmetric where they are signed
  (NNCF's ``MIXED`` preset: the residual stream is);
- activation ranges from the plain minimum and maximum over the calibration set: NNCF's default, the
  mean of per-sample extremes, clips flat saturated areas (measured −3.7 dB on a screenshot in Set14);
- the first convolution of a fidelity model is int8 with its input range pinned to exactly [0, 1] in 256
  levels (``exact_pixel_range``): the engine feeds it uint8 pixels divided by 255
  (``models.int8.with_uint8_io``), so every pixel value ``k/255`` is a quantization level and its input
  rounding is lossless; only its per-channel weights are rounded. NNCF's calibration finds [0, 1] only
  when the crops hold both a black and a white pixel, so the range is set after it. In float it took
  ~2.7 % of a 768² vcsr-m-x2 pass (28-30 ms), in int8 ~2 % (16-22 ms); it cost vcsr-m-x2 0.018 dB on
  Set5 (worst image 0.056), within the rule. A real-world model (weights recording ``degradation:
  real``) keeps it in float: rounding its weights took vcsr-real-x2's worst BSD100 image from 0.056 to
  0.30 dB, past the rule. So does a network with condition planes (its other inputs are not pixels);
- the last convolution is int8. At ×4 (48 maps; in float they took 15-18 % of a pass, 205 of 1286 ms
  of a 1024² vcsr-m-x4 tile) its input range is the calibration's minimum and maximum, at a cost of
  ~0.01 dB. At ×2 (12 maps, ~6 % of a pass in float) that range lost 0.44 dB on a smooth photograph:
  textured crops stretch the range to −2.3…3.1 while such an image's values span −0.2…0.3, ~20 levels,
  so the error is the step size, not clipping. Its range is therefore the ``Recipe.tail_quantile`` and
  ``1 − tail_quantile`` quantiles of the calibration values (``tail_input_range``; 10⁻⁶: −1.61…1.68 for
  vcsr-m-x2), which clips ~one value in a million: vcsr-m-x2 then loses 0.029 dB on Set5 (worst image
  0.083; 0.015 and 0.010 on Set14 and BSD100) and 0.014 dB on the photographs of
  ``tests/models/test_int8_quality.py`` against bf16 (worst 0.117, the smooth one, which lost 0.44 with
  the min/max range), and runs 2-11 % faster than with that convolution in float (vcsr-s-x2, 12 maps of
  32 channels: 16-19 %; ``bench.engine``'s timing, batches of four 256² and 512² tiles, same runs).
  Quantization-aware fine-tuning under the min/max range did not help it (docs/benchmarks.md). A
  real-world or conditioned ×2 network keeps it in float (not measured);
- the residual stream stays in float: the blocks' additions are left out of the quantized scope, so
  each block's output is added in float and only the convolutions' inputs are rounded to int8. With the
  additions quantized, the rounding errors of eight blocks pile up in the stream (vcsr-m-x2: 0.052 dB
  mean loss on Set5, 0.23 dB on its worst BSD100 image, past the rule); in float, 0.008 and 0.025, at
  ~9 % more time (single-thread 512² pass, 488 → 532 ms). Only the last four additions in float was
  ~5 % faster and within the rule on the evaluation sets (vcsr-m-x2 0.014 / 0.088), but an int8 stream
  clips on photographs brighter or more saturated than the calibration crops: vcsr-real-x4 lost 1.1 dB
  on one of the six photographs of ``tests/models/test_int8_quality.py``, so the whole stream stays float.
  Nor do training-quantile ranges save an int8 stream (``bench.int8_stream``, vcsr-m-x2, 11-13 % faster):
  at 10⁻⁶ a smooth photograph loses 0.25 dB to the step size, at 10⁻⁵ and 10⁻⁴ others 0.17-0.28 dB to
  clipping, and the best build (increments on min/max) 0.28 dB on a Set14 image (docs/benchmarks.md).
  The exceptions are ``Recipe.int8_stream``'s. vcsr-s-x2 (four blocks) passed that probe's check on
  training crops with its stream on the ``StreamRecipe.quantile`` (10⁻⁵) ranges (``pin_stream``): 21-25 %
  faster, sets 0.004 / 0.013 / 0.008 dB (worst image 0.088), photographs −0.018 / 0.057 against bf16.
  vcsr-m-x2's stream is first equalized per channel (``models.equalize``, α = 0.5): its few wide channels
  no longer set the step of all the others, so the ranges can clip less for the same step. Its stream
  quantizers sit on the 3·10⁻⁶ quantiles, the increments on NNCF's min/max: training crops 0.020 / 0.063 dB
  against fp32 (the float stream 0.015 / 0.060), sets 0.027 / 0.017 / 0.011 (worst image 0.135, Set14),
  photographs 0.008 / 0.109 against bf16 (float stream: 0.014 / 0.117), 17-25 % faster. The level was
  chosen after 10⁻⁵ lost 0.26 dB on that Set14 image and 10⁻⁶ 0.18 dB on a photograph (docs/benchmarks.md);
- smooth content: a build calibrated on textured crops can lose on smooth, bright images, whose
  activations span a few of the levels those ranges set (the step size again). ``vcsr-jpeg-x4`` lost
  1.57 dB against bf16 on one of the photographs, and 0.98 dB on Gaussian-blurred training crops.
  ``Recipe.float_block_inputs`` names, per network, the residual blocks whose first convolution (the
  stream's quantizer) stays in float, and such a network calibrates on larger crops
  (``Recipe.smooth_calibration_side``); ``bench.int8_smooth`` picks the blocks greedily on the blurred
  training crops. ``vcsr-jpeg-x4``: blocks 2, 4 and 5 (worst blurred crop 0.13 dB; photographs, never
  used to choose, 0.05), 1.38× its bf16 speed instead of ~2×; ``vcsr-real-x4``: blocks 4 and 5 (0.10;
  photographs 0.07, was 1.30), ~1.9× its bf16 speed;
- the bicubic base is exported as its phase convolution (``models.arch.use_phase_base``), in float with
  its add: OpenVINO's Interpolate took 37-43 % of a ×4 pass, the convolution takes ~2.6 %;
- NNCF's fast bias correction (its default). Its channel alignment and full bias correction measured
  no better on vcsr-m-x2 (Set5 loss 0.074 / 0.082 dB against 0.074), keeping two more convolutions in
  float 0.070 at 1.3× the time: the recipe leaves them off.

The artefact (``<name>.int8.xml`` + ``.bin`` beside the weights) records the weights' SHA-256, so that
a stale artefact is never served (``models.int8.artefact_matches``), and the recipe.

Data: the calibration crops come from ``shared/datasets/train`` only (never the evaluation sets), made
the way the model was trained: bicubic downscales, or ``models.degrade`` for a model whose weights
record ``degradation: real``. A degradation-aware network (``conditions`` on its config) is exported
with its condition values as a second input (``convert``) and each crop calibrates with the values the
service would measure on it (``conditioned_inputs``); its first convolution, which reads them, and its ×2
last one stay in float, as a real-world network's do (vcsr-jpeg-x2: within ±0.012 dB of fp32 on average
on clean, JPEG q50 and noise σ5 + JPEG 75 inputs alike, worst image 0.061). Seeded: a run reproduces its
artefact. Then measure it:
``python -m models.evaluate --model NAME --precision --json …`` records the int8 loss.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

import nncf
import numpy as np
import openvino as ov
import openvino.opset13 as ops
import torch
from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
from nncf.quantization.range_estimator import RangeEstimatorParametersSet
from numpy.typing import NDArray

from models.arch import VCSR, condition_values, use_phase_base
from models.data import DegradedSampler, load_hr_images, shared_root
from models.degrade import DegradationSettings
from models.equalize import equalize_stream, run_hooked
from models.int8 import DIGEST_KEY, artefact_path, weights_digest
from models.loader import load_model, read_metadata
from models.registry import BUILTIN, resolve

log = logging.getLogger("models.quantize")
DEFAULT_TRAIN_ROOT = shared_root() / "datasets" / "train"
# What stays in float, as OpenVINO's converter names it after the modules: the bicubic base with its add,
# the residual blocks' additions, the last convolution where it is cheap, and the first one of a real-world
# or conditioned network (module docstring).
FLOAT_LAYERS = [r"__module\.phases/.*", r"__module\.body\.\d+/aten::add_?/Add"]
FLOAT_TAIL = r"__module\.tail/.*"
FLOAT_HEAD = r"__module\.head/.*"
HEAD = "__module.head/aten::_convolution/Convolution"
TAIL = "__module.tail/aten::_convolution/Convolution"
PIXEL_LEVELS = 256  # 8-bit pixels: the head's input levels are exactly k/255
QUANTILE_TAIL_MAX_SCALE = 2  # up to ×2 the last convolution's input range is a quantile range (docstring)
EXTREMES_PER_CROP = 4096  # the most extreme values kept per crop: enough for a quantile of 10⁻⁶
STREAM_START = "aten::relu_/Relu"  # the head's activation, as OpenVINO names it: the stream's first value
Point = tuple[str, str]  # a tensor of the float network: (submodule, "in" for its first input or "out")


@dataclass(frozen=True)
class StreamRecipe:
    """A residual stream in int8: every stream quantizer (``stream_points``) on the ``quantile`` and
    ``1 - quantile`` quantiles of its calibration values, the increments' too unless ``pin_increments`` is
    False (they then keep NNCF's min/max range); with ``equalize`` > 0 the stream's channels are first
    rescaled by that exponent of their relative ranges (``models.equalize``)."""

    quantile: float = 1e-5
    pin_increments: bool = True
    equalize: float = 0.0


@dataclass(frozen=True)
class Recipe:
    calibration_crops: int = 256
    # A real-world model's crops: this share clean, the rest through ``models.degrade``. It serves clean
    # and degraded uploads alike; at its training mix (0.3 clean) the widened ranges cost a clean photo
    # 0.17 dB against bf16, at 0.6 the worst of clean, JPEG q50 and noise σ5-10 photos is 0.11 dB.
    real_clean_share: float = 0.6
    # A degradation-aware model's crops, which it reads with their values: its training mix's share.
    # vcsr-jpeg-x2 on six photographs, clean and as JPEG q50 and q75, worst loss against fp32: at 0.6
    # 0.11 / 0.17 / 0.16 dB, at 0.3 0.09 / 0.04 / 0.03 (JPEG crops only: 0.13 / 0.01 / 0.02).
    conditioned_clean_share: float = 0.3
    calibration_side: int = 192  # high-resolution side of a calibration crop (the input is side / scale)
    channel_alignment: bool = False
    seed: int = 0
    tail_quantile: float = 1e-6  # at ×2: the last convolution's input range, as quantiles of its calibration
    # Fidelity models whose residual stream runs int8, and how (``StreamRecipe``): chosen with
    # ``bench.int8_stream`` on training crops, then held to the rule on the sets and photographs (module
    # docstring). vcsr-m-x2 needs its stream equalized: on plain quantile ranges it lost 0.28 dB on a Set14
    # image (clipping) or 0.25 on a smooth photograph (the step size).
    int8_stream: tuple[tuple[str, StreamRecipe], ...] = (
        ("vcsr-s-x2", StreamRecipe()),
        ("vcsr-m-x2", StreamRecipe(quantile=3e-6, pin_increments=False, equalize=0.5)),
    )
    # Networks whose int8 build loses too much on smooth content (the step size, not clipping): the residual
    # blocks whose first convolution stays in float, and the calibration crops' high-resolution side. Chosen
    # on training crops only, Gaussian-blurred (σ 4) BSD200 centre crops, clean and as JPEG q50, by adding the
    # block that most lowers the worst crop's loss until it is within the rule (bench.int8_smooth): for
    # vcsr-jpeg-x4 blocks 4, 5 then 2 (worst crop 1.04 → 0.60 → 0.25 → 0.13 dB), vcsr-real-x4 4 then 5
    # (0.76 → 0.35 → 0.10); at 192² crops (48² inputs) one photograph still lost 0.31 dB, at 320² none over
    # 0.07 (module docstring).
    float_block_inputs: tuple[tuple[str, tuple[int, ...]], ...] = (
        ("vcsr-jpeg-x4", (2, 4, 5)),
        ("vcsr-real-x4", (4, 5)),
    )
    smooth_calibration_side: int = 320

    def for_model(self, name: str) -> Recipe:
        """The recipe as it applies to ``name``: larger calibration crops where it keeps blocks' inputs float."""
        if self.float_blocks(name):
            return replace(self, calibration_side=self.smooth_calibration_side)
        return self

    def float_blocks(self, name: str) -> tuple[int, ...]:
        return dict(self.float_block_inputs).get(name, ())

    def stream(self, name: str) -> StreamRecipe | None:
        """How ``name``'s residual stream runs in int8; None when it stays in float."""
        return dict(self.int8_stream).get(name)


def block_input_patterns(blocks: Sequence[int]) -> list[str]:
    """Name patterns of the residual blocks' first convolutions (their input is the residual stream)."""
    return [rf"__module\.body\.{index}\.conv1/.*" for index in blocks]


def trained_on_real(weights: Path) -> bool:
    """Whether the weights record ``degradation: real``: a real-world model, trained on degraded inputs."""
    return read_metadata(weights).get("degradation") == "real"


def calibration_sampler(
    weights: Path, scale: int, recipe: Recipe, root: Path, conditioned: bool = False
) -> DegradedSampler:
    """Crops of the training images, degraded as the model's own training data was: Pillow bicubic, or
    the realistic pipeline when the weights record ``degradation: real`` (with ``recipe.real_clean_share``
    of them clean, ``recipe.conditioned_clean_share`` for a ``conditioned`` network)."""
    share = recipe.conditioned_clean_share if conditioned else recipe.real_clean_share
    settings = DegradationSettings(clean_p=share if trained_on_real(weights) else 1.0)
    patch = recipe.calibration_side // scale
    images = load_hr_images([root / "T91", root / "BSD200"], scale, patch)
    return DegradedSampler(images, scale, patch, recipe.seed, settings)


def calibration_inputs(weights: Path, scale: int, recipe: Recipe, root: Path) -> list[NDArray[np.float32]]:
    """``recipe.calibration_crops`` float ``1×3×p×p`` crops (``calibration_sampler``)."""
    sampler = calibration_sampler(weights, scale, recipe, root)
    return [sampler.batch(1)[0].numpy() for _ in range(recipe.calibration_crops)]


def conditioned_inputs(
    weights: Path, scale: int, conditions: Sequence[str], recipe: Recipe, root: Path
) -> list[tuple[NDArray[np.float32], NDArray[np.float32]]]:
    """``calibration_inputs``' crops, each with its ``1×K`` condition values: what the service would
    measure on it (``models.degrade.Applied``), as the network was trained."""
    sampler = calibration_sampler(weights, scale, recipe, root, conditioned=True)
    crops = []
    for _ in range(recipe.calibration_crops):
        lr, _, applied = sampler.sample(1)
        crops.append((lr.numpy(), condition_values(conditions, applied[0].as_measured()).numpy()))
    return crops


def convert(module: torch.nn.Module, conditions: int) -> ov.Model:
    """The float network as an OpenVINO model: ``N×3×h×w`` pixels in (any batch and size) and, for a
    network conditioned on ``conditions`` values, their ``N×K`` floats as a second input."""
    pixels = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        if not conditions:
            return ov.convert_model(module, example_input=pixels, input=[(-1, 3, -1, -1)])
        example = (pixels, torch.rand(1, conditions))
        return ov.convert_model(module, example_input=example, input=[(-1, 3, -1, -1), (-1, conditions)])


def float_layers(scale: int, fidelity: bool = True, int8_stream: bool = False, blocks: Sequence[int] = ()) -> list[str]:
    """The name patterns kept in float for a network of ``scale``: a fidelity network's first and last
    convolutions are int8, a real-world or conditioned one keeps its first, and its last at ×2; and the
    first convolution of each of ``blocks`` (``Recipe.float_blocks``)."""
    if fidelity:
        patterns = FLOAT_LAYERS[:1] if int8_stream else list(FLOAT_LAYERS)
    else:
        patterns = [*FLOAT_LAYERS, FLOAT_HEAD, *([FLOAT_TAIL] if scale <= QUANTILE_TAIL_MAX_SCALE else [])]
    return patterns + block_input_patterns(blocks)


def pin_input_range(model: ov.Model, conv: str, low: float, high: float, levels: int | None = None) -> ov.Model:
    """``model`` with the FakeQuantize on the input of the convolution named ``conv`` set to [low, high]
    (and ``levels``, when given). Raises ``ValueError`` when that input is not quantized."""
    for op in model.get_ordered_ops():
        consumers = [target.get_node().get_friendly_name() for target in op.output(0).get_target_inputs()]
        if op.get_type_name() == "FakeQuantize" and consumers == [conv]:
            if levels is not None:
                op.set_levels(levels)
            for port, bound in zip(range(1, 5), (low, high, low, high), strict=True):
                shape = op.input_value(port).get_shape()
                op.input(port).replace_source_output(ops.constant(np.full(shape, bound, np.float32)).output(0))
            return model
    raise ValueError(f"{model.get_friendly_name()}: no input quantizer on {conv}")


def pin_output_range(model: ov.Model, source: str, low: float, high: float) -> ov.Model:
    """``model`` with the FakeQuantize on the output of the node named ``source`` set to [low, high].
    Raises ``ValueError`` when that output is not quantized."""
    for op in model.get_ordered_ops():
        if op.get_type_name() == "FakeQuantize" and op.input_value(0).get_node().get_friendly_name() == source:
            for port, bound in zip(range(1, 5), (low, high, low, high), strict=True):
                shape = op.input_value(port).get_shape()
                op.input(port).replace_source_output(ops.constant(np.full(shape, bound, np.float32)).output(0))
            return model
    raise ValueError(f"{model.get_friendly_name()}: no quantizer on the output of {source}")


def stream_points(blocks: int) -> dict[str, Point]:
    """The residual stream's quantized tensors of a VCSR with ``blocks`` blocks, as OpenVINO names the
    nodes they leave (their FakeQuantize follows) → the same tensor in the float network: the head's
    activation (the stream's start), and each block's second convolution and addition."""
    points: dict[str, Point] = {STREAM_START: ("body.0", "in") if blocks else ("tail", "in")}
    for block in range(blocks):
        points[f"__module.body.{block}.conv2/aten::_convolution/Add"] = (f"body.{block}.conv2", "out")
        points[f"__module.body.{block}/aten::add_/Add"] = (f"body.{block}", "out")
    return points


def is_increment(source: str) -> bool:
    """Whether the stream point ``source`` is a block's second convolution: the increment the block adds."""
    return ".conv2/" in source


def pin_stream(
    model: ov.Model, module: torch.nn.Module, calibration: list[NDArray[np.float32]], stream: StreamRecipe
) -> ov.Model:
    """``model`` (its additions quantized) with the quantizers of the residual stream (``stream_points``;
    the last addition's is the last convolution's input) on the ``stream.quantile`` / ``1 - quantile``
    range of its tensor over ``calibration`` in the float ``module``; the increments' only when
    ``stream.pin_increments``."""
    points = stream_points(len(cast(torch.nn.Sequential, module.get_submodule("body"))))
    pinned = {source: point for source, point in points.items() if stream.pin_increments or not is_increment(source)}
    extremes = activation_extremes(module, list(pinned.values()), calibration)
    for source, point in pinned.items():
        pin_output_range(model, source, *extremes[point].quantile_range(stream.quantile))
    return model


def exact_pixel_range(model: ov.Model) -> ov.Model:
    """``model`` with its first convolution's input quantized on exactly [0, 1] in ``PIXEL_LEVELS``
    levels, the grid of 8-bit pixels divided by 255: lossless for the engine's input."""
    return pin_input_range(model, HEAD, 0.0, 1.0, PIXEL_LEVELS)


@dataclass(frozen=True)
class Extremes:
    """One tensor's most extreme values over a calibration set: enough for its quantiles up to
    ``EXTREMES_PER_CROP`` values from either end (``quantile_range``)."""

    lows: torch.Tensor  # each crop's lowest values, concatenated
    highs: torch.Tensor  # each crop's highest values
    count: int  # values seen in all
    kept: int  # values kept per crop from either end

    def quantile_range(self, quantile: float) -> tuple[float, float]:
        """The ``quantile`` and ``1 - quantile`` quantiles (at least the extremes); exact, else ``ValueError``."""
        rank = max(int(quantile * self.count), 1)
        if rank > self.kept:
            raise ValueError(f"quantile {quantile} needs the {rank} most extreme values; {self.kept} are kept")
        return float(self.lows.topk(rank, largest=False).values[-1]), float(self.highs.topk(rank).values[-1])


def activation_extremes(
    module: torch.nn.Module, points: list[Point], calibration: list[NDArray[np.float32]], kept: int | None = None
) -> dict[Point, Extremes]:
    """Each point's ``Extremes`` over ``calibration``, run in float; a point is a submodule and ``"in"``
    (its first input) or ``"out"`` (its output). Each crop keeps its ``kept`` (``EXTREMES_PER_CROP``)
    lowest and highest values, so any quantile within that many values of either end is exact."""
    kept = kept or EXTREMES_PER_CROP
    lows: dict[Point, list[torch.Tensor]] = {point: [] for point in points}
    highs: dict[Point, list[torch.Tensor]] = {point: [] for point in points}
    counts = dict.fromkeys(points, 0)

    def keeper(point: Point) -> Callable[[torch.nn.Module, tuple[torch.Tensor, ...], torch.Tensor], None]:
        def keep(_: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            values = (inputs[0] if point[1] == "in" else output).flatten()
            counts[point] += values.numel()
            k = min(kept, values.numel())
            lows[point].append(values.topk(k, largest=False).values)
            highs[point].append(values.topk(k).values)

        return keep

    hooks = [module.get_submodule(point[0]).register_forward_hook(keeper(point)) for point in points]
    run_hooked(module, calibration, hooks)
    return {point: Extremes(torch.cat(lows[point]), torch.cat(highs[point]), counts[point], kept) for point in points}


def tail_input_range(
    module: torch.nn.Module, calibration: list[NDArray[np.float32]], quantile: float
) -> tuple[float, float]:
    """The ``quantile`` and ``1 - quantile`` quantiles of the last convolution's input (``module.tail``)
    over ``calibration``, run in float (``activation_extremes``)."""
    point = ("tail", "in")
    return activation_extremes(module, [point], calibration)[point].quantile_range(quantile)


def quantize(weights: Path, name: str, recipe: Recipe, root: Path = DEFAULT_TRAIN_ROOT) -> ov.Model:
    """The int8 OpenVINO model of ``weights``: float [0, 1] ``N×3×h×w`` in (any batch and size; a
    conditioned network's ``N×K`` condition values beside them), the network's unclamped float output out."""
    recipe = recipe.for_model(name)
    torch.manual_seed(recipe.seed)
    loaded = load_model(weights, name)
    info = loaded.info
    module = use_phase_base(loaded.module.eval())  # the base as a convolution: OpenVINO's Interpolate is slow
    if info.conditions:
        calibration = conditioned_inputs(weights, info.scale, info.conditions, recipe, root)
        float_patterns = float_layers(info.scale, fidelity=False, blocks=recipe.float_blocks(name))
        quantized = calibrate(convert(module, len(info.conditions)), calibration, float_patterns, recipe)
    else:
        quantized = quantize_plain(module, weights, name, info.scale, recipe, root)
    quantized.set_friendly_name(name)
    quantized.set_rt_info(weights_digest(weights), DIGEST_KEY)
    quantized.set_rt_info(repr(recipe), ["vcsr", "recipe"])
    return quantized


def calibrate(model: ov.Model, calibration: Sequence[object], float_patterns: list[str], recipe: Recipe) -> ov.Model:
    """NNCF's post-training quantization of ``model`` over ``calibration`` (each item one pass's inputs),
    leaving the layers matching ``float_patterns`` in float."""
    parameters = AdvancedQuantizationParameters(
        activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX,
        disable_channel_alignment=not recipe.channel_alignment,
    )
    quantized: ov.Model = nncf.quantize(
        model,
        nncf.Dataset(calibration),
        preset=nncf.QuantizationPreset.MIXED,
        subset_size=len(calibration),
        ignored_scope=nncf.IgnoredScope(patterns=float_patterns),
        advanced_parameters=parameters,
    )
    return quantized


def quantize_plain(
    module: torch.nn.Module, weights: Path, name: str, scale: int, recipe: Recipe, root: Path
) -> ov.Model:
    """``calibrate`` for a network without condition planes, then the ranges the recipe pins (module
    docstring): a fidelity network's pixel input, its int8 stream or its ×2 last convolution's input.
    A stream the recipe equalizes is rescaled in ``module`` itself, before conversion, so the pinned
    ranges are read on the network that was quantized."""
    calibration = calibration_inputs(weights, scale, recipe, root)
    fidelity = not trained_on_real(weights)
    stream = recipe.stream(name) if fidelity else None
    float_patterns = float_layers(scale, fidelity, stream is not None, recipe.float_blocks(name))
    if stream is not None and stream.equalize:
        equalize_stream(cast(VCSR, module), calibration, stream.equalize)
    quantized = calibrate(convert(module, 0), calibration, float_patterns, recipe)
    if not fidelity:
        return quantized
    quantized = exact_pixel_range(quantized)
    if stream is not None:
        return pin_stream(quantized, module, calibration, stream)
    if scale <= QUANTILE_TAIL_MAX_SCALE:
        return pin_input_range(quantized, TAIL, *tail_input_range(module, calibration, recipe.tail_quantile))
    return quantized


def build(name: str, recipe: Recipe, out: Path | None = None, root: Path = DEFAULT_TRAIN_ROOT) -> Path:
    """Quantize the registered model ``name`` and write its artefact (beside its weights, or in ``out``)."""
    weights = resolve(name).path
    target = artefact_path(out / weights.name if out else weights)
    target.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantize(weights, name, recipe, root), target, compress_to_fp16=False)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    vcsr = sorted(n for n, s in BUILTIN.items() if s.config is not None)
    parser.add_argument("--model", nargs="+", default=vcsr, choices=vcsr)
    parser.add_argument("--out", type=Path, help="write here instead of beside the weights")
    parser.add_argument("--root", type=Path, default=DEFAULT_TRAIN_ROOT, help="the training images")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for name in args.model:
        started = time.perf_counter()
        path = build(name, Recipe(), args.out, args.root)
        log.info("%s: wrote %s in %.0f s", name, path, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
