"""Probe: the residual stream of a ×2 fidelity model in int8, on quantile ranges, against the shipped build.

    python -m bench.int8_stream [--model vcsr-m-x2] [--quantiles 1e-6 1e-5 1e-4] [--float-blocks 5,6,7 …]
                                [--equalize 0 0.5 1] [--out DIR] [--photos]

``models.quantize`` keeps the residual blocks' additions in float (each block's output is added in
float, only the convolutions' inputs are rounded). This builds the same network with the additions
quantized too (NNCF's own ranges, min/max over the recipe's training crops), then, per ``--quantiles``
level q, the stream's quantizers — the head's activation and each block's second convolution and
addition (``models.quantize.stream_points``) — pinned to the q / 1 − q quantiles of their calibration
values (``models.quantize.activation_extremes``, the rule the ×2 last convolution ships with); and per
level a build with the stream's values on that range but the increments (the blocks' second convolutions'
outputs, which feed only their addition) on NNCF's min/max range ("but increments"). Each
``--float-blocks`` set (comma-separated block indices; ``-`` for none) keeps those blocks' additions in
float on every build, as the shipped recipe does for all of them. Each ``--equalize`` α builds all of that
from the network with its stream rescaled per channel first (``models.equalize``; 0: as it is).

Every build is scored against fp32 on training crops the calibration did not draw (``validation_pairs``:
seeded 256² crops of ``shared/datasets/train``, Pillow-bicubic downscaled): that is where a variant is
chosen. ``--photos`` adds the loss against bf16 on the six photographs of
``tests/models/test_int8_quality.py``: a final measurement, not a selection signal. Prints one line per
build: mean and worst per-image PSNR-Y loss (dB). The builds are written to ``--out`` for
``bench.engine``-style timing.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import cast

import numpy as np
import openvino as ov
import torch
from numpy.typing import NDArray
from PIL import Image

from models import quantize as q
from models.arch import VCSR, use_phase_base
from models.engine import Engine
from models.equalize import equalize_stream
from models.int8 import DIGEST_KEY, Int8Engine, artefact_path, weights_digest
from models.loader import LoadedModel, load_model
from models.metrics import psnr_y
from models.photos import LR_SIDE, Pair, photo_pairs
from models.registry import resolve


def validation_pairs(scale: int, count: int = 40, seed: int = 1, root: Path = q.DEFAULT_TRAIN_ROOT) -> list[Pair]:
    """``count`` seeded ``LR_SIDE·scale`` crops of distinct training images and their bicubic downscales."""
    paths = sorted(p for folder in (root / "T91", root / "BSD200") for p in folder.glob("*.png"))
    side = LR_SIDE * scale
    images = []
    for path in paths:
        with Image.open(path) as image:
            if min(image.size) >= side:
                images.append(image.convert("RGB"))
    rng = np.random.default_rng(seed)
    pairs = []
    for index in sorted(rng.choice(len(images), size=min(count, len(images)), replace=False)):
        image = images[index]
        left, top = int(rng.integers(0, image.width - side + 1)), int(rng.integers(0, image.height - side + 1))
        hr = image.crop((left, top, left + side, top + side))
        pairs.append((np.asarray(hr.resize((LR_SIDE, LR_SIDE), Image.Resampling.BICUBIC)), np.asarray(hr)))
    return pairs


def stream_int8(loaded: LoadedModel, calibration: list[NDArray[np.float32]], float_blocks: set[int]) -> ov.Model:
    """The recipe's build with the residual additions quantized (but those of ``float_blocks``): min/max
    ranges, the first convolution on exact pixel levels; the stream's ranges are set by the caller."""
    ignored = [q.FLOAT_LAYERS[0], *(rf"__module\.body\.{block}/aten::add_?/Add" for block in sorted(float_blocks))]
    model = q.convert(use_phase_base(loaded.module.eval()), 0)
    return q.exact_pixel_range(q.calibrate(model, calibration, ignored, q.Recipe()))


def with_ranges(model: ov.Model, ranges: dict[str, tuple[float, float]]) -> ov.Model:
    """A copy of ``model`` with the quantizer after each named node pinned to its range (where quantized)."""
    pinned = model.clone()
    for source, (low, high) in ranges.items():
        try:
            q.pin_output_range(pinned, source, low, high)
        except ValueError:
            continue  # a float addition of ``--float-blocks``: nothing to pin
    return pinned


def losses(
    engine: Int8Engine, reference: Callable[[NDArray[np.uint8]], NDArray[np.uint8]], pairs: list[Pair]
) -> list[float]:
    scale = engine.info.scale
    return [psnr_y(reference(lr), hr, scale) - psnr_y(engine.upscale_image(lr), hr, scale) for lr, hr in pairs]


def summary(values: list[float]) -> str:
    """Mean / worst."""
    return f"{np.mean(values):.3f} / {max(values):.3f}"


def stream_builds(
    network: LoadedModel, weights: Path, calibration: list[NDArray[np.float32]], args: argparse.Namespace, tag: str
) -> dict[str, Path]:
    """Every ``--float-blocks`` × range variant of ``network``'s int8 stream, written to ``args.out``."""
    module = cast(VCSR, network.module)
    recipe = q.Recipe()
    points = q.stream_points(module.config.blocks)
    extremes = q.activation_extremes(module, list(points.values()), calibration, kept=16384)
    last = list(points)[-1]  # the last addition: its quantizer is the last convolution's input
    builds: dict[str, Path] = {}
    for spec in args.float_blocks:
        blocks = {int(b) for b in spec.split(",") if b not in ("", "-")}
        base = stream_int8(network, calibration, blocks)
        variants = {"min/max": {last: q.tail_input_range(module, calibration, recipe.tail_quantile)}}
        for level in args.quantiles:
            ranges = {src: extremes[point].quantile_range(level) for src, point in points.items()}
            variants[f"q {level:g}"] = ranges
            variants[f"q {level:g} but increments"] = {s: r for s, r in ranges.items() if not q.is_increment(s)}
        for label, ranges in variants.items():
            model = with_ranges(base, ranges)
            model.set_rt_info(weights_digest(weights), DIGEST_KEY)
            name = f"{tag}stream {label}, float blocks {spec}"
            builds[name] = args.out / f"{args.model}.{tag.strip(', ').replace(' ', '')}.{len(builds)}.int8.xml"
            ov.save_model(model, builds[name], compress_to_fp16=False)
    return builds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vcsr-m-x2")
    parser.add_argument("--quantiles", nargs="+", type=float, default=[1e-6, 1e-5, 1e-4])
    parser.add_argument("--float-blocks", nargs="+", default=["-"], help="e.g. - 7 6,7")
    parser.add_argument("--equalize", nargs="+", type=float, default=[0.0], help="α of models.equalize (0: none)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "int8-stream")
    parser.add_argument("--photos", action="store_true", help="also the loss against bf16 on the photographs")
    args = parser.parse_args(argv)
    weights = resolve(args.model).path
    loaded = load_model(weights, args.model)
    if not isinstance(loaded.module, VCSR):
        raise SystemExit(f"{args.model} is not a VCSR network")
    recipe = q.Recipe()
    torch.manual_seed(recipe.seed)
    calibration = q.calibration_inputs(weights, loaded.info.scale, recipe, q.DEFAULT_TRAIN_ROOT)
    fp32 = Engine(load_model(weights, args.model).module, loaded.info, torch.device("cpu"))
    bf16 = Engine(load_model(weights, args.model).module, loaded.info, torch.device("cpu"), torch.bfloat16)
    validation, photos = validation_pairs(loaded.info.scale), photo_pairs(loaded.info.scale) if args.photos else []
    builds: dict[str, Path] = {"shipped": artefact_path(weights)}
    args.out.mkdir(parents=True, exist_ok=True)
    for alpha in args.equalize:
        network = load_model(weights, args.model)
        if alpha:
            equalize_stream(cast(VCSR, network.module), calibration, alpha)
        builds |= stream_builds(network, weights, calibration, args, f"α {alpha:g}, ")
    for tag, path in builds.items():
        engine = Int8Engine(path, loaded.info)
        line = f"{tag:48s} training crops vs fp32 {summary(losses(engine, fp32.upscale_image, validation))}"
        if photos:
            line += f"   photographs vs bf16 {summary(losses(engine, bf16.upscale_image, photos))}"
        print(f"{line}   ({path})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
