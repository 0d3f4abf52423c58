"""Write a bundled model's card from its evaluation file, its architecture and a speed measured here.

    python -m models.card --model vcsr-m-x2 [--print]

Scores come from ``<name>.eval.json`` (``python -m models.evaluate --model NAME --precision --json …``),
parameters and FLOPs per output pixel from the architecture, CPU speed from timing the engine on
512×512 tiles at the model's default precision with every core. The recipe is the training command.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from models.arch import flops_per_output_pixel
from models.conditioning import bind
from models.engine import keep_large_allocations
from models.loader import load_model
from models.precision import MAX_IMAGE_LOSS_DB, MAX_LOSS_DB, int8_within_rule, served_engine
from models.registry import BUILTIN, ModelSpec, default_model_name

PUBLISHED = {  # Set5 / Set14 / BSD100 PSNR-Y from the papers
    2: {"SRCNN": (36.66, 32.45, 31.36), "FSRCNN": (37.00, 32.63, 31.53), "VDSR": (37.53, 33.03, 31.90),
        "EDSR": (38.11, 33.92, 32.32)},
    4: {"SRCNN": (30.48, 27.50, 26.90), "FSRCNN": (30.72, 27.61, 26.98), "VDSR": (31.35, 28.01, 27.29),
        "EDSR": (32.46, 28.80, 27.71)},
}  # fmt: skip

# A model the policy routes only degraded uploads to may take up to this multiple of the fidelity model's time.
MAX_ROUTED_COST = 2.0

# How each bundled model was trained (the arguments given to ``python -m models.train``).
RECIPES = {
    "vcsr-s-x2": ("--steps 8000 --patch 48", "fp32", "~18 min"),
    "vcsr-s-x4": ("--steps 8000 --patch 40", "fp32", "~13 min"),
    "vcsr-m-x2": ("--amp --steps 40000 --patch 48", "bf16 autocast (weights, Adam and loss in fp32)", "~2.8 h"),
    "vcsr-m-x4": ("--amp --steps 40000 --patch 40", "bf16 autocast (weights, Adam and loss in fp32)", "~2.1 h"),
}
# The real-world models: fine-tunes of the medium models on degraded inputs, trained on one H200 with
# 7 CPU processes making the degraded batches; --time-budget fixed the step count (29 543 and 26 573).
REAL_RECIPES = {
    "vcsr-real-x2": "--degradation real --init vcsr-m-x2 --amp --device cuda --workers 7 --batch 32 --patch 64 "
    "--lr 2e-4 --steps 29543",
    "vcsr-real-x4": "--degradation real --init vcsr-m-x4 --amp --device cuda --workers 7 --batch 32 --patch 48 "
    "--lr 2e-4 --steps 26573",
}


# The JPEG specialists, trained on this 2-core CPU (docs/training/soft-mix.md, README "Real-world models"):
# the last stage's arguments, and how the stages went.
STAGED_RECIPES = {
    "vcsr-jpeg-x2": (
        "--degradation real --mix soft --init models/checkpoints/vcsr-real-c-x2/vcsr-real-c-x2.safetensors "
        "--amp --lr 5e-5 --batch 16 --patch 48 --workers 1 --steps 1502 --seed 2",
        [
            "- **Recipe**: three stages on this project's 2-core CPU, bf16 autocast, L1 loss, Adam with cosine decay:",
            "  from `vcsr-real-x2` with a zero-initialised widened head, 1 481 steps of 8 patches of 40²; 7 000",
            "  steps of 16 patches of 48² from lr 1e-4 (seed 1; `models/checkpoints/vcsr-real-c-x2/`); then 1 502",
            "  steps with `--mix soft` from lr 5e-5 (seed 2; `models/checkpoints/vcsr-real-cs-x2/`). About 2.5 h.",
        ],
    ),
    "vcsr-jpeg-x4": (
        "--degradation real --mix soft --init vcsr-real-x4 --amp --lr 1e-4 --batch 16 --patch 40 --workers 1 "
        "--steps 12000 --seed 3",
        [
            "- **Recipe**: one stage on this project's 2-core CPU, bf16 autocast, L1 loss, Adam with cosine decay:",
            "  from `vcsr-real-x4` with a zero-initialised widened head, 12 000 steps of 16 patches of 40² with",
            "  `--mix soft` from lr 1e-4 (seed 3; `models/checkpoints/vcsr-real-c-x4/`). About 1.3 h.",
        ],
    ),
}


def cpu_megapixels_per_s(spec: ModelSpec, seconds: float = 5.0) -> tuple[float, str]:
    """Input megapixels per second on 512×512 tiles, batch 1, the default precision, every core."""
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    keep_large_allocations()  # as the upscaler replica does
    engine = bind(served_engine(spec.name, torch.device("cpu")), {})  # a conditioned one told "clean"
    tile = torch.randint(0, 256, (1, 3, 512, 512), dtype=torch.uint8)
    engine.run(tile)
    best, spent = float("inf"), 0.0
    while spent < seconds:
        started = time.perf_counter()
        engine.run(tile)
        elapsed = time.perf_counter() - started
        best, spent = min(best, elapsed), spent + elapsed
    return 512 * 512 / best / 1e6, engine.precision


def paired_speeds(spec: ModelSpec, fidelity: ModelSpec, rounds: int = 3) -> tuple[tuple[float, str], tuple[float, str]]:
    """``spec``'s and ``fidelity``'s speeds, timed in turn ``rounds`` times and the best of each kept: on a
    noisy machine the two figures of a ratio must see the same conditions."""
    runs = [(cpu_megapixels_per_s(spec, 2.0), cpu_megapixels_per_s(fidelity, 2.0)) for _ in range(rounds)]
    return max(r[0] for r in runs), max(r[1] for r in runs)


def render(spec: ModelSpec, speed: tuple[float, str], fidelity_speed: tuple[float, str] | None = None) -> str:
    """The card's text; ``fidelity_speed``, the fidelity model's speed measured in the same run, for a model
    that runs only on the uploads routed to it (its cost is stated against the model it replaces there)."""
    assert spec.config is not None
    config, name = spec.config, spec.name
    scale = config.scale
    report: dict[str, Any] = json.loads(spec.path.with_name(name + ".eval.json").read_text())
    params = load_model(spec.path, name).info.parameters
    sets = report["sets"]
    lines = [
        f"# Model card: `{name}`",
        "",
        f"A VCSR network (`models/arch.py`): {config.channels} channels, {config.blocks} residual blocks in "
        f"low-resolution space, a pixel shuffle to ×{scale}, added to a bicubic upsample of the input.",
        "",
        f"- **Size and cost**: {params:,} parameters; {flops_per_output_pixel(config) / 1e3:.1f} kFLOP per output "
        f"pixel ({flops_per_output_pixel(config) * scale**2 / 1e3:.0f} kFLOP per input pixel).",
        f"- **Speed**: {speed[0]:.2f} megapixels of input per second on this project's 2-core CPU "
        f"(512×512 tiles, {speed[1]}, both cores; `python -m bench.engine --models {name}` for the full table).",
        *_cost_line(scale, speed, fidelity_speed),
        *_recipe(name),
        f"- **Evaluate**: `python -m models.evaluate --model {name} --precision --json {name}.eval.json`",
        f"  (the full per-image table is in `{name}.eval.json` beside this card).",
    ]
    losses = {k: v for k, v in report.get("precision_loss_db", {}).items() if not k.startswith("int8")}
    if losses:
        shown = ", ".join(f"{k} {v:+.4f} dB" for k, v in losses.items())
        lines.append(f"- **Precision**: Set5 PSNR-Y loss against fp32: {shown} (served in bf16 where ≤ 0.05 dB).")
    lines += _int8_lines(name, report.get("int8_loss_db", {}), int8_within_rule(report.get("precision_loss_db", {})))
    if config.conditions:
        lines += [
            f"- **Conditions**: told each upload's measured {' and '.join(config.conditions)} (constant input",
            "  planes, `models.conditioning`); its int8 build takes them as a second input, its int8 loss is",
            "  measured on clean inputs and on those it is routed (`jpeg50/…`, `noise5+jpeg75/…`, told their values).",
        ]
    lines += [
        "",
        f"PSNR-Y / SSIM-Y (BT.601 luma, {scale} pixels shaved; greyscale images on their grey values):",
        "",
        "| set | PSNR | SSIM | bicubic PSNR | bicubic SSIM | images better than bicubic | VDSR PSNR |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, (set_name, result) in enumerate(sets.items()):
        m, images = result["mean"], result["images"]
        better = sum(im["psnr"] > im["bicubic_psnr"] for im in images)
        vdsr = PUBLISHED[scale]["VDSR"][i]
        lines.append(
            f"| {set_name} | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['bicubic_psnr']:.2f} | {m['bicubic_ssim']:.4f} "
            f"| {better}/{len(images)} | {vdsr:.2f} |"
        )
    lines += ["", "Set5 per image:", "", "| image | PSNR | SSIM | bicubic PSNR |", "|---|---|---|---|"]
    for im in sets["Set5"]["images"]:
        lines.append(f"| {im['image']} | {im['psnr']:.2f} | {im['ssim']:.4f} | {im['bicubic_psnr']:.2f} |")
    published = ", ".join(f"{k} {' / '.join(f'{v:.2f}' for v in vals)}" for k, vals in PUBLISHED[scale].items())
    lines += ["", f"Published ×{scale} PSNR-Y (Set5 / Set14 / BSD100) for comparison: {published}.", ""]
    return "\n".join([*lines[:-1], *degraded_lines(report), ""])


def _cost_line(scale: int, speed: tuple[float, str], fidelity_speed: tuple[float, str] | None) -> list[str]:
    if fidelity_speed is None:
        return []
    fidelity, ratio = default_model_name(scale), fidelity_speed[0] / speed[0]
    return [
        f"- **Cost on a routed upload**: {ratio:.2f}× the time of `{fidelity}` "
        f"({fidelity_speed[0]:.2f} megapixels/s, {fidelity_speed[1]}, timed in turn); it runs only on the degraded",
        f"  uploads the quality policy routes to it, where the project accepts up to {MAX_ROUTED_COST:g}×"
        + (" (over it: its int8 build is outside the rule)." if ratio > MAX_ROUTED_COST else "."),
    ]


def _int8_lines(name: str, by_set: dict[str, dict[str, float]], served: bool) -> list[str]:
    """The int8 build's measured loss per set, and whether the precision rule serves it."""
    if not by_set:
        return []

    def shown(items: list[tuple[str, dict[str, float]]]) -> str:
        return ", ".join(f"{s} {v['mean']:+.3f} (worst image {v['worst']:+.3f})" for s, v in items)

    sets = [(s, v) for s, v in by_set.items() if not s.startswith("photos")]
    photos = [(s, v) for s, v in by_set.items() if s.startswith("photos")]
    verdict = "served in int8 on CPUs with VNNI" if served else "outside the rule: served in bf16"
    on_photos = [f"  on the six photographs of `models.photos`, against bf16: {shown(photos)} dB;"] if photos else []
    return [
        f"- **int8** (OpenVINO; `python -m models.quantize --model {name}`): PSNR-Y loss against fp32",
        f"  {shown(sets)} dB;",
        *on_photos,
        f"  {verdict} (the rule: every set's mean loss ≤ {MAX_LOSS_DB} dB, every image's ≤ {MAX_IMAGE_LOSS_DB} dB).",
    ]


def _recipe(name: str) -> list[str]:
    if name in STAGED_RECIPES:
        args, stages = STAGED_RECIPES[name]
        return [
            "- **Data**: `../shared/datasets/train` only (T91 + BSD200, 291 images), degraded by `models/degrade.py`",
            "  as for the real-world models, each sample's JPEG quality and noise σ recorded as the service measures",
            "  them; with `--mix soft`, 30 % faithful soft pairs instead (the target band-limited or lowered in",
            "  contrast, the input its plain bicubic downscale, JPEG q30–95 or clean). No evaluation image was seen.",
            *stages,
            f"- **Reproduce** (the last stage): `python -m models.train --model {name} {args}`",
        ]
    if name in REAL_RECIPES:
        args = REAL_RECIPES[name]
        base = args.split("--init ")[1].split()[0]
        return [
            "- **Data**: `../shared/datasets/train` only (T91 + BSD200, 291 images), each also downscaled by 0.9–0.6;",
            "  low-resolution inputs made on the fly by `models/degrade.py`: 30 % clean Pillow-bicubic, the rest",
            "  downscaled with a random filter then one or two rounds (second with p 0.2, milder) of blur",
            "  (isotropic or anisotropic Gaussian, σ ≤ 2), resize jitter, Gaussian or Poisson noise (σ ≤ 12 levels)",
            "  and JPEG (quality 25–95). No evaluation image was seen in training.",
            f"- **Recipe**: fine-tuned from `{base}`: Adam (lr 2e-4, cosine decay to 0),",
            "  L1 loss, batches of 32 random patches with flips and transposes, seed 0, bf16 autocast, on one",
            "  NVIDIA H200 for 5.5 minutes (the degradations ran in 7 CPU worker processes).",
            f"- **Reproduce**: `python -m models.train --model {name} {args} --seed 0`",
        ]
    args, precision, duration = RECIPES[name]
    patch = args.split("--patch ")[1]
    steps = args.split("--steps ")[1].split()[0]
    return [
        "- **Data**: `../shared/datasets/train` only (T91 + BSD200, 291 images), each also downscaled by 0.9–0.6;",
        "  low-resolution inputs made with Pillow's bicubic resize. No evaluation image was seen in training.",
        f"- **Recipe**: {int(steps):,} steps of Adam (lr 1e-3, cosine decay to 0), L1 loss, batches of 16 random",
        f"  {patch}×{patch} low-resolution patches with flips and transposes, seed 0, {precision},",
        f"  one CPU thread ({duration} of wall-clock on this 2-core machine, sharing it with another run).",
        f"- **Reproduce**: `python -m models.train --model {name} {args} --seed 0`",
    ]


def degraded_lines(report: dict[str, Any]) -> list[str]:
    """The degraded benchmark (``models.evaluate --degraded``) as a table, when the report carries one."""
    degraded = report.get("degraded")
    if not degraded:
        return []
    names = degraded["models"]
    lines = [
        "",
        "Degraded benchmark (`python -m models.evaluate --degraded ...`): the low-resolution input degraded at",
        "each setting with fixed seeds, PSNR-Y / SSIM-Y against the clean high-resolution image; the last column",
        f"counts images where `{names[-1]}` beats bicubic:",
        "",
        "| setting | set | bicubic | " + " | ".join(names) + " | better than bicubic |",
        "|---|---|---|" + "---|" * len(names) + "---|",
    ]
    for setting, sets in degraded["settings"].items():
        for set_name, entry in sets.items():
            cells = [f"{entry[n]['psnr']:.2f} / {entry[n]['ssim']:.4f}" for n in names]
            bic = entry["bicubic"]
            lines.append(
                f"| {setting} | {set_name} | {bic['psnr']:.2f} / {bic['ssim']:.4f} | "
                + " | ".join(cells)
                + f" | {entry[names[-1]]['better_than_bicubic']}/{entry['count']} |"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", required=True, choices=sorted({*RECIPES, *REAL_RECIPES, *STAGED_RECIPES}))
    parser.add_argument("--print", action="store_true", help="print instead of writing <name>.md")
    args = parser.parse_args(argv)
    for name in args.model:
        spec = BUILTIN[name]
        assert spec.config is not None
        if spec.family == "fidelity":
            card = render(spec, cpu_megapixels_per_s(spec))
        else:
            card = render(spec, *paired_speeds(spec, BUILTIN[default_model_name(spec.config.scale)]))
        if args.print:
            print(card)
        else:
            Path(spec.path.with_name(name + ".md")).write_text(card)
            print(f"wrote {spec.path.with_name(name + '.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
