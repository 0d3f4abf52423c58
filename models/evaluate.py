"""Evaluate a model on Set5 / Set14 / BSD100 with the literature's protocol, beside bicubic.

    python -m models.evaluate --model vcsr-s-x2 [--sets Set5 Set14 BSD100] [--json out.json]
    python -m models.evaluate --degraded vcsr-m-x2 vcsr-real-x2 [--settings jpeg50 …] [--json out.json]
    python -m models.evaluate --model vcsr-m-x2 --int8 --json vcsr-m-x2.eval.json

PSNR/SSIM on BT.601 luma with ``scale`` pixels shaved (``models.metrics``); bicubic is Pillow's,
which reproduces the published bicubic figures (shared/datasets/README.md).

The degraded benchmark (``--degraded``) stands for real uploads: each set's low-resolution image is
first degraded at a named setting (``DEGRADED_SETTINGS``: JPEG at quality 30/50/75 saved by Pillow,
Gaussian noise of σ 5/10 8-bit levels then JPEG 75, Gaussian blur of σ 1.0/1.6 low-resolution pixels),
with a seed fixed per setting and image, and every model — and bicubic — is scored against the
*clean* high-resolution image. A degradation-aware model (a candidate such as ``vcsr-real-c-x2``) gets
the values the service would measure on such an upload (``setting_condition``: the JPEG's quality, read
exactly from its tables, and the noise added after the last JPEG, since the service's per-channel
estimate does not see noise under a JPEG's chroma). On the clean sets (``--model``, ``--weights``, and
the ``--precision`` check that lets the service run it in bf16) it is told what a clean upload measures.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

from models.conditioning import bind
from models.data import shared_root
from models.degrade import convolve, gaussian_kernel, gaussian_noise, jpeg
from models.engine import Engine, TileEngine, resolve_device
from models.int8 import Int8Engine, artefact_matches, artefact_path
from models.loader import LoadedModel, load_model
from models.metrics import psnr_y, ssim_y
from models.photos import photo_pairs
from models.precision import DTYPES, INT8, INT8_WORST_IMAGE, candidates
from models.registry import CANDIDATES, resolve

DEFAULT_EVAL_ROOT = shared_root() / "datasets" / "eval"
SETS = ("Set5", "Set14", "BSD100")

Upscaler = Callable[[NDArray[np.uint8]], NDArray[np.uint8]]
ToldCase = tuple[NDArray[np.uint8], NDArray[np.uint8], dict[str, float | None]]  # input, reference, its values
# A degradation-aware model on the clean sets (and in the precision check) is told what the service
# would measure on a clean upload: no JPEG, no noise.
CLEAN: dict[str, float | None] = {}
# Where a degradation-aware model's int8 loss is measured besides the clean sets: what it is routed.
INT8_DEGRADED_SETTINGS = ("jpeg50", "noise5+jpeg75")


@dataclass(frozen=True)
class ImageScore:
    image: str
    psnr: float
    ssim: float
    bicubic_psnr: float
    bicubic_ssim: float


def bicubic(image: NDArray[np.uint8], scale: int) -> NDArray[np.uint8]:
    pil = Image.fromarray(image)
    return np.asarray(pil.resize((pil.width * scale, pil.height * scale), Image.Resampling.BICUBIC))


def read_image(path: Path) -> NDArray[np.uint8]:
    with Image.open(path) as image:
        return np.asarray(image.convert("L") if image.mode == "L" else image.convert("RGB"))


def _hr_paths(set_dir: Path, scale: int) -> list[Path]:
    folder = set_dir / f"x{scale}"
    paths = sorted(folder.glob("*_HR.png"))
    if not paths:
        raise FileNotFoundError(f"no *_HR.png images in {folder}")
    return paths


def _lr_path(hr_path: Path) -> Path:
    return hr_path.with_name(hr_path.name.replace("_HR", "_LR"))


def _score(hr_path: Path, lr: NDArray[np.uint8], upscale: Upscaler, scale: int) -> ImageScore:
    hr = read_image(hr_path)
    out, base = upscale(lr), bicubic(lr, scale)
    return ImageScore(
        hr_path.name.removesuffix("_HR.png"),
        psnr_y(out, hr, scale),
        ssim_y(out, hr, scale),
        psnr_y(base, hr, scale),
        ssim_y(base, hr, scale),
    )


def evaluate_set(upscale: Upscaler, set_dir: Path, scale: int) -> list[ImageScore]:
    return [_score(p, read_image(_lr_path(p)), upscale, scale) for p in _hr_paths(set_dir, scale)]


# Named degradations of the low-resolution input, applied in order: ("jpeg", quality),
# ("noise", σ in 8-bit levels, per channel), ("blur", σ in low-resolution pixels, isotropic Gaussian).
DEGRADED_SETTINGS: dict[str, tuple[tuple[str, float], ...]] = {
    "clean": (),
    "jpeg30": (("jpeg", 30),),
    "jpeg50": (("jpeg", 50),),
    "jpeg75": (("jpeg", 75),),
    "noise5+jpeg75": (("noise", 5), ("jpeg", 75)),
    "noise10+jpeg75": (("noise", 10), ("jpeg", 75)),
    "blur1.0": (("blur", 1.0),),
    "blur1.6": (("blur", 1.6),),
}


def degrade_named(image: NDArray[np.uint8], setting: str, key: str) -> NDArray[np.uint8]:
    """``image`` (RGB or greyscale) degraded at ``setting``; noise is seeded by ``setting`` and ``key``
    (the image's name), so every run and every model sees the very same degraded input."""
    rng = np.random.default_rng(zlib.crc32(f"{setting}/{key}".encode()))
    grey = image.ndim == 2
    out = image[..., None] if grey else image
    for op, value in DEGRADED_SETTINGS[setting]:
        if op == "jpeg":
            out = jpeg(out, int(value))
        elif op == "noise":
            out = gaussian_noise(out, float(value), rng)
        else:
            out = convolve(out, gaussian_kernel(float(value), float(value), 0.0))
    return out[..., 0] if grey else out


def setting_condition(setting: str) -> dict[str, float | None]:
    """What the service would measure on an upload degraded at ``setting``: the last JPEG's quality
    (``None``: no JPEG) and the σ of the noise added after it."""
    jpeg_quality: float | None = None
    noise = 0.0
    for op, value in DEGRADED_SETTINGS[setting]:
        if op == "jpeg":
            jpeg_quality, noise = value, 0.0
        elif op == "noise":
            noise = math.hypot(noise, value)
    return {"jpeg_quality": jpeg_quality, "noise": noise}


def setting_engine(loaded: LoadedModel, device: torch.device, setting: str) -> TileEngine:
    """An engine for ``loaded`` on inputs degraded at ``setting``: a degradation-aware VCSR is bound to
    ``setting_condition``; any other model runs as it is."""
    return bind(Engine(loaded.module, loaded.info, device), setting_condition(setting))


def evaluate_degraded(upscale: Upscaler, set_dir: Path, scale: int, setting: str) -> list[ImageScore]:
    """``evaluate_set`` on inputs degraded at ``setting``; scores are against the clean HR image."""
    return [
        _score(hr_path, degrade_named(read_image(_lr_path(hr_path)), setting, hr_path.name), upscale, scale)
        for hr_path in _hr_paths(set_dir, scale)
    ]


def summarise(scores: list[ImageScore]) -> dict[str, float]:
    return {
        k: float(np.mean([getattr(s, k) for s in scores])) for k in ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim")
    }


def engine_upscaler(engine: TileEngine) -> Upscaler:
    return lambda image: engine.upscale_image(image, tile=512)


def precision_losses(path: Path, name: str, device: torch.device, set5: Path) -> dict[str, float]:
    """Set5 PSNR-Y of fp32 minus that of each reduced precision worth using on ``device``."""
    results: dict[str, float] = {}
    reference: float | None = None
    for dtype_name in ["fp32", *candidates(device, load_model(path, name).info)]:
        loaded = load_model(path, name)
        engine = bind(Engine(loaded.module, loaded.info, device, DTYPES[dtype_name]), CLEAN)
        psnr = summarise(evaluate_set(engine_upscaler(engine), set5, engine.scale))["psnr"]
        if reference is None:
            reference = psnr
        else:
            results[dtype_name] = round(reference - psnr, 4)
    return results


def int8_losses(path: Path, name: str, fp32_psnr: dict[str, list[float]], root: Path) -> dict[str, dict[str, float]]:
    """Per set, the mean and the worst per-image PSNR-Y loss of the int8 artefact of ``path`` against
    ``fp32_psnr`` (each image's fp32 PSNR-Y, in ``evaluate_set``'s order), and for a degradation-aware
    model per degraded setting too (``int8_degraded_losses``); empty without an up-to-date artefact."""
    artefact = artefact_path(path)
    if not artefact_matches(artefact, path):
        return {}
    loaded = load_model(path, name)
    int8 = Int8Engine(artefact, loaded.info)
    engine = bind(int8, CLEAN)
    losses = {}
    for set_name, reference in fp32_psnr.items():
        scores = evaluate_set(engine_upscaler(engine), root / set_name, engine.scale)
        losses[set_name] = _loss(reference, [s.psnr for s in scores])
    if loaded.info.conditions:
        losses |= int8_degraded_losses(loaded, int8, list(fp32_psnr), root)
    return losses | int8_photo_losses(path, name, artefact, root.parent.parent)  # root: shared/datasets/eval


def int8_photo_losses(path: Path, name: str, artefact: Path, shared: Path) -> dict[str, dict[str, float]]:
    """The int8 build's loss against bf16 on ``models.photos``' photographs (a degradation-aware model's
    also as JPEG q50, both engines told so): the service's acceptance bound on photos, which the sets can
    miss (a ×4 build within the rule on every set image lost 0.57-0.68 dB on two of them)."""
    loaded = load_model(path, name)  # its own copy: a bf16 Engine converts the module in place
    scale = loaded.info.scale
    bf16 = Engine(loaded.module, loaded.info, torch.device("cpu"), torch.bfloat16)
    int8 = Int8Engine(artefact, loaded.info)
    pairs = photo_pairs(scale, shared)
    uploads: dict[str, list[ToldCase]] = {"photos": [(lr, hr, CLEAN) for lr, hr in pairs]}
    if loaded.info.conditions:
        uploads["photos-jpeg50"] = [(jpeg(lr, 50), hr, {"jpeg_quality": 50}) for lr, hr in pairs]

    return {
        key: _loss(told_psnrs(bf16, cases, scale), told_psnrs(int8, cases, scale)) for key, cases in uploads.items()
    }


def told_psnrs(engine: TileEngine, cases: list[ToldCase], scale: int) -> list[float]:
    """PSNR-Y of each case's upscale against its reference, ``engine`` told the case's degradation."""
    return [psnr_y(bind(engine, told).upscale_image(lr), hr, scale) for lr, hr, told in cases]


def int8_degraded_losses(
    loaded: LoadedModel, int8: Int8Engine, sets: list[str], root: Path
) -> dict[str, dict[str, float]]:
    """A degradation-aware model's int8 loss on the inputs it is routed (``INT8_DEGRADED_SETTINGS``), each
    engine told the setting's values, keyed ``setting/set``: where its condition input is not "clean"."""
    fp32 = Engine(loaded.module, loaded.info, torch.device("cpu"))
    losses = {}
    for setting in INT8_DEGRADED_SETTINGS:
        told = setting_condition(setting)
        for set_name in sets:
            reference, scores = (
                [s.psnr for s in evaluate_degraded(engine_upscaler(bind(e, told)), root / set_name, e.scale, setting)]
                for e in (fp32, int8)
            )
            losses[f"{setting}/{set_name}"] = _loss(reference, scores)
    return losses


def _loss(reference: list[float], got: list[float]) -> dict[str, float]:
    """The mean and the worst of ``reference`` minus ``got``, image by image."""
    diffs = [r - g for r, g in zip(reference, got, strict=True)]
    return {"mean": round(float(np.mean(diffs)), 4), "worst": round(max(diffs), 4)}


def int8_rule_losses(by_set: dict[str, dict[str, float]]) -> dict[str, float]:
    """The figures the precision rule holds int8 to: the worst set's mean loss and the worst image's."""
    return {INT8: max(v["mean"] for v in by_set.values()), INT8_WORST_IMAGE: max(v["worst"] for v in by_set.values())}


def record_int8(report_path: Path, path: Path, name: str, root: Path) -> dict[str, dict[str, float]]:
    """Measure the int8 artefact against the fp32 scores already in ``report_path`` (written by a full
    run) and record its loss there, leaving the rest of the file as it was."""
    report = json.loads(report_path.read_text())
    fp32_psnr = {s: [im["psnr"] for im in r["images"]] for s, r in report["sets"].items()}
    by_set = int8_losses(path, name, fp32_psnr, root)
    if not by_set:
        raise SystemExit(f"no up-to-date int8 artefact for {path}; run `python -m models.quantize --model {name}`")
    report["int8_loss_db"] = by_set
    report.setdefault("precision_loss_db", {}).update(int8_rule_losses(by_set))
    report_path.write_text(json.dumps(report, indent=2))
    return by_set


def degraded_benchmark(
    names: list[str], sets: list[str], settings: list[str], root: Path, device: torch.device
) -> dict[str, Any]:
    """Every model (and bicubic) on every set at every named degradation: per-image and mean PSNR-Y /
    SSIM-Y against the clean HR image. The models must share one scale."""
    models = {name: load_model(resolve(name, CANDIDATES).path, name) for name in names}
    scales = {m.info.scale for m in models.values()}
    if len(scales) != 1:
        raise SystemExit(f"--degraded models must share one scale, got {sorted(scales)}")
    scale = scales.pop()
    report: dict[str, Any] = {"scale": scale, "models": names, "settings": {}}
    for setting in settings:
        engines = {name: setting_engine(loaded, device, setting) for name, loaded in models.items()}
        for set_name in sets:
            per_model = {
                n: evaluate_degraded(engine_upscaler(e), root / set_name, scale, setting) for n, e in engines.items()
            }
            first = per_model[names[0]]
            entry: dict[str, Any] = {
                "bicubic": {"psnr": float(np.mean([s.bicubic_psnr for s in first])),
                            "ssim": float(np.mean([s.bicubic_ssim for s in first]))},
                "images": {s.image: {"bicubic": round(s.bicubic_psnr, 4)} for s in first},
            }  # fmt: skip
            for name, scores in per_model.items():
                mean = summarise(scores)
                better = sum(s.psnr > s.bicubic_psnr for s in scores)
                entry[name] = {"psnr": mean["psnr"], "ssim": mean["ssim"], "better_than_bicubic": better}
                entry["count"] = len(scores)
                for s in scores:
                    entry["images"][s.image][name] = round(s.psnr, 4)
            report["settings"].setdefault(setting, {})[set_name] = entry
            _print_degraded(setting, set_name, names, entry, len(first))
    return report


def _print_degraded(setting: str, set_name: str, names: list[str], entry: dict[str, Any], count: int) -> None:
    cells = [f"bicubic {entry['bicubic']['psnr']:.2f}/{entry['bicubic']['ssim']:.4f}"]
    cells += [
        f"{n} {entry[n]['psnr']:.2f}/{entry[n]['ssim']:.4f} ({entry[n]['better_than_bicubic']}/{count} > bicubic)"
        for n in names
    ]
    print(f"{setting:<15} {set_name:<7} " + "  ".join(cells), flush=True)


def _row(dataset: str, image: str, psnr: float, ssim: float, bic_psnr: float, bic_ssim: float) -> str:
    return f"{dataset:<8} {image:<10} {psnr:7.2f} {ssim:7.4f} {bic_psnr:9.2f} {bic_ssim:9.4f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="registered model name, e.g. vcsr-s-x2")
    source.add_argument("--weights", type=Path, help="any model file (ours or spandrel's)")
    source.add_argument("--degraded", nargs="+", metavar="MODEL", help="the degraded benchmark of these models")
    parser.add_argument("--settings", nargs="+", default=list(DEGRADED_SETTINGS), choices=list(DEGRADED_SETTINGS))
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument("--root", type=Path, default=DEFAULT_EVAL_ROOT)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path, help="also write per-image and mean scores here")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32", help="precision to evaluate in")
    parser.add_argument(
        "--precision",
        action="store_true",
        help="also measure the Set5 PSNR-Y loss of each reduced precision this device supports, and the "
        "int8 artefact's loss on every set (with --dtype fp32)",
    )
    parser.add_argument(
        "--int8",
        action="store_true",
        help="only measure the int8 artefact, against the fp32 scores already in --json, and record it there",
    )
    args = parser.parse_args(argv)
    if args.int8 and (args.json is None or not args.json.is_file()):
        parser.error("--int8 records into an existing report: give --json <name>.eval.json from a full run")
    # No gradients anywhere in an evaluation, and none left disabled for a caller that runs main() in-process.
    with torch.no_grad():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    if args.int8:
        name = args.model or args.weights.stem
        path = resolve(args.model).path if args.model else args.weights
        print("int8 PSNR-Y loss against fp32 (mean, worst image):", record_int8(args.json, path, name, args.root))
        return 0
    if args.degraded:
        degraded = degraded_benchmark(args.degraded, args.sets, args.settings, args.root, resolve_device(args.device))
        if args.json:
            args.json.write_text(json.dumps(degraded, indent=1))
        return 0

    path = resolve(args.model, CANDIDATES).path if args.model else args.weights
    loaded = load_model(path, args.model)
    device = resolve_device(args.device)
    engine = bind(Engine(loaded.module, loaded.info, device, DTYPES[args.dtype]), CLEAN)
    report: dict[str, object] = {"model": loaded.info.name, "scale": engine.scale, "sets": {}}
    fp32_psnr: dict[str, list[float]] = {}
    print(f"{loaded.info.name} ×{engine.scale}  ({loaded.info.parameters:,} parameters)")
    print(f"{'set':<8} {'image':<10} {'PSNR':>7} {'SSIM':>7} {'bic PSNR':>9} {'bic SSIM':>9}")
    for name in args.sets:
        scores = evaluate_set(engine_upscaler(engine), args.root / name, engine.scale)
        for s in scores:
            print(_row(name, s.image, s.psnr, s.ssim, s.bicubic_psnr, s.bicubic_ssim))
        mean = summarise(scores)
        print(_row(name, "MEAN", mean["psnr"], mean["ssim"], mean["bicubic_psnr"], mean["bicubic_ssim"]))
        report["sets"][name] = {"mean": mean, "images": [asdict(s) for s in scores]}  # type: ignore[index]
        fp32_psnr[name] = [s.psnr for s in scores]
    if args.precision:
        losses = precision_losses(path, loaded.info.name, device, args.root / "Set5")
        print("Set5 PSNR-Y loss against fp32:", losses)
        if args.dtype == "fp32":
            by_set = int8_losses(path, loaded.info.name, fp32_psnr, args.root)
            if by_set:
                losses.update(int8_rule_losses(by_set))
                report["int8_loss_db"] = by_set
                print("int8 PSNR-Y loss against fp32 (mean, worst image):", by_set)
        report["precision_loss_db"] = losses
    if args.json:
        # Sections this run does not produce (the degraded benchmark's) are kept from the file it replaces.
        earlier = json.loads(args.json.read_text()) if args.json.is_file() else {}
        args.json.write_text(json.dumps({**earlier, **report}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
