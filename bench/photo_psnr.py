"""Whole-image PSNR-Y of every shared camera photo, degraded as an upload, per model, beside bicubic.

    python -m bench.photo_psnr [--settings jpeg50 noise5+jpeg75 noise10] [--scale 2] \
        [--models vcsr-m-x2 vcsr-real-x2 vcsr-real-c-x2] [--candidate NAME=FILE.safetensors …] [--json F]

The photos of ``shared/datasets/photos`` are for evaluation only (never trained or calibrated on). Each
is made into a reference and an upload exactly as ``bench.quality_sheet`` does (the photo at half size,
Lanczos; bicubic ÷scale; ``bench.route_quality.upload`` at the setting, seeded per setting and photo),
decoded and measured by the flow's own functions. Every model runs in fp32 on the whole image; a
degradation-aware model (a candidate such as ``vcsr-real-c-x2``, or a ``--candidate`` file of one) is
bound to what the service would tell it (``quality.degradation`` of the measured metrics). The route
column names the model the service's policy picks for the upload (``quality_sheet.service_route``).

Printed: one row per photo and setting, the mean per setting and model, and how many photos each
model beats bicubic on. A measurement script, not a test: numbers go in notes and commit messages.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.quality_sheet import Service, photo_pair, service_route
from bench.route_quality import SETTINGS, measure, upload
from deployments.flow import quality
from models.conditioning import bind
from models.data import shared_root
from models.engine import Engine, TileEngine
from models.evaluate import bicubic
from models.loader import load_model
from models.metrics import psnr_y
from models.registry import CANDIDATES, resolve


def engines(names: list[str], candidates: list[str]) -> dict[str, Engine]:
    """fp32 CPU engines of the registered or candidate ``names`` and of each ``NAME=FILE`` candidate."""
    paths = {name: resolve(name, CANDIDATES).path for name in names}
    paths |= {text.split("=", 1)[0]: Path(text.split("=", 1)[1]) for text in candidates}
    out = {}
    for name, path in paths.items():
        loaded = load_model(path, name)
        out[name] = Engine(loaded.module, loaded.info, torch.device("cpu"))
    return out


def score(photo: Path, setting: str, service: Service, models: dict[str, Engine]) -> dict[str, Any]:
    """One photo at one setting: its measured metrics, the service's route and every model's PSNR-Y."""
    hr, lr = photo_pair(photo, service.scale)
    pixels, metrics = measure(upload(lr, setting, photo.name))
    routed = service_route(metrics, pixels, service.policy, service.threshold, service.served, service.scale)
    row: dict[str, Any] = {
        "photo": photo.stem,
        "setting": setting,
        "jpeg_quality": metrics.jpeg_quality,
        "noise": round(metrics.noise, 2),
        "route": routed.model.name,
        "bicubic": psnr_y(bicubic(pixels, service.scale), hr, service.scale),
    }
    for name, engine in models.items():
        told = quality.degradation(metrics, pixels, engine.info.conditions).values()
        bound: TileEngine = bind(engine, told)
        row[name] = psnr_y(bound.upscale_image(pixels, tile=512), hr, service.scale)
    return row


def report(rows: list[dict[str, Any]], names: list[str]) -> str:
    """Per setting: each model's mean PSNR-Y, mean gain over bicubic and photos above bicubic."""
    lines = []
    for setting in dict.fromkeys(r["setting"] for r in rows):
        chosen = [r for r in rows if r["setting"] == setting]
        cells = [f"bicubic {np.mean([r['bicubic'] for r in chosen]):.2f}"]
        for name in names:
            gain = [r[name] - r["bicubic"] for r in chosen]
            above = sum(g > 0 for g in gain)
            cells.append(
                f"{name} {np.mean([r[name] for r in chosen]):.2f} ({np.mean(gain):+.2f}, {above}/{len(chosen)} > bic)"
            )
        lines.append(f"{setting:<14} " + "  ".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=["jpeg50", "noise5+jpeg75", "noise10"], choices=SETTINGS)
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--models", nargs="*", default=["vcsr-m-x2", "vcsr-real-x2", "vcsr-real-c-x2"])
    parser.add_argument("--candidate", nargs="*", default=[], help="NAME=FILE.safetensors, also scored")
    parser.add_argument("--photos", nargs="*", help="only these photo files (default: all)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    torch.set_num_threads(args.threads)
    service = Service(args.scale)
    models = engines(args.models, args.candidate)
    folder = shared_root() / "datasets" / "photos"
    photos = [folder / p for p in args.photos] if args.photos else sorted(folder.glob("*.jpg"))
    rows = []
    for setting in args.settings:
        for photo in photos:
            rows.append(score(photo, setting, service, models))
            r = rows[-1]
            cells = " ".join(f"{n} {r[n]:.2f}" for n in ["bicubic", *models])
            print(f"{setting:<14} {r['photo'][:22]:<22} q={r['jpeg_quality']} n={r['noise']} "
                  f"route={r['route']}  {cells}", flush=True)  # fmt: skip
    print(report(rows, list(models)))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
