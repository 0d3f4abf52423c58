"""Probe: which residual blocks' inputs an int8 build keeps in float, chosen greedily on smooth training crops.

    python -m bench.int8_smooth [--model vcsr-jpeg-x4] [--side 320] [--bound 0.15] [--blur 4]

An int8 build calibrated on textured training crops can lose on smooth content: its activations there
span a few of the levels those crops' ranges set (the step size, not clipping). Training crops stand
for that content here: every fourth BSD200 image's 256² centre, blurred by a Gaussian of σ ``--blur``
pixels and Pillow-bicubic downscaled, each scored clean and, for a degradation-aware model, also as
JPEG q50 (told so). Starting with no block in float, each round builds one variant per remaining block
with its first convolution (whose input is the residual stream) also in float, calibrated on crops of
``--side`` (``models.quantize.Recipe``), and keeps the variant whose worst crop loses least against
fp32, until that worst crop is within ``--bound`` dB. The blocks chosen go into
``models.quantize.Recipe.float_block_inputs``; the photographs of ``models.photos`` stay the check
that ``models.evaluate --int8`` records, never a selection signal here.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import openvino as ov
import torch
from numpy.typing import NDArray
from PIL import Image, ImageFilter

from models import quantize as q
from models.degrade import jpeg
from models.engine import Engine, TileEngine
from models.evaluate import ToldCase, told_psnrs
from models.int8 import Int8Engine
from models.loader import load_model
from models.registry import resolve


def smooth_cases(scale: int, blur: float, conditioned: bool, root: Path = q.DEFAULT_TRAIN_ROOT) -> list[ToldCase]:
    """Blurred training crops and their downscales, clean (and as JPEG q50 for a conditioned model)."""
    side, cases = 256, list[ToldCase]()
    clean: dict[str, float | None] = {}
    q50: dict[str, float | None] = {"jpeg_quality": 50}
    for path in sorted((root / "BSD200").glob("*.png"))[::4]:
        with Image.open(path) as image:
            left, top = (image.width - side) // 2, (image.height - side) // 2
            hr = image.convert("RGB").crop((left, top, left + side, top + side)).filter(ImageFilter.GaussianBlur(blur))
        lr = np.asarray(hr.resize((side // scale, side // scale), Image.Resampling.BICUBIC))
        reference: NDArray[np.uint8] = np.asarray(hr)
        cases.append((lr, reference, clean))
        if conditioned:
            cases.append((jpeg(lr, 50), reference, q50))
    return cases


def scores(engine: TileEngine, cases: list[ToldCase], scale: int) -> NDArray[np.float64]:
    return np.array(told_psnrs(engine, cases, scale))


def choose(name: str, side: int, bound: float, blur: float, out: Path) -> tuple[int, ...]:
    spec = resolve(name)
    assert spec.config is not None, f"{name} is not a VCSR model"
    loaded, blocks = load_model(spec.path, name), spec.config.blocks
    scale = loaded.info.scale
    cases = smooth_cases(scale, blur, bool(loaded.info.conditions))
    reference = scores(Engine(loaded.module, loaded.info, torch.device("cpu")), cases, scale)

    def worst_loss(blocks: tuple[int, ...]) -> float:
        recipe = q.Recipe(calibration_side=side, float_block_inputs=((name, blocks),), smooth_calibration_side=side)
        target = out / f"{'-'.join(map(str, blocks)) or 'none'}" / f"{name}.int8.xml"
        target.parent.mkdir(parents=True, exist_ok=True)
        ov.save_model(q.quantize(spec.path, name, recipe), target, compress_to_fp16=False)
        loss = reference - scores(Int8Engine(target, loaded.info), cases, scale)
        print(f"float {blocks or '-'}: mean {loss.mean():.4f}, worst {loss.max():.3f} dB", flush=True)
        return float(loss.max())

    chosen: tuple[int, ...] = ()
    worst = worst_loss(chosen)
    while worst > bound and len(chosen) < blocks:
        tried = {b: worst_loss(tuple(sorted((*chosen, b)))) for b in range(blocks) if b not in chosen}
        best = min(tried, key=tried.__getitem__)
        chosen, worst = tuple(sorted((*chosen, best))), tried[best]
        print(f"round: keep block {best} → {chosen}, worst {worst:.3f} dB", flush=True)
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vcsr-jpeg-x4")
    parser.add_argument("--side", type=int, default=q.Recipe().smooth_calibration_side)
    parser.add_argument("--bound", type=float, default=0.15, help="dB: the worst crop's loss to reach")
    parser.add_argument("--blur", type=float, default=4.0, help="Gaussian σ in high-resolution pixels")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as out:
        print("float blocks:", choose(args.model, args.side, args.bound, args.blur, Path(out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
