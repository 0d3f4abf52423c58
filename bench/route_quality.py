"""What the quality policy's routing does to the picture: the routed model against the fidelity model.

    python -m bench.route_quality [--policies F …] [--scales 2 4] [--sets Set5 Set14 BSD100] [--json F]

Each evaluation set's low-resolution image is degraded at a setting (``SETTINGS``: clean, Gaussian noise
per channel saved as PNG, JPEG at several qualities, noise then JPEG, blur; seeded per setting and image
as in ``models.evaluate --degraded``) and written as the file a client would upload. The flow's own
functions measure it (``inspection.inspect`` → ``inspection.decode`` → ``quality.measure``) and the policy
picks a family (each of ``--policies`` in turn, on the same outputs); the model the service routes each
family to at that scale (its catalogue and ``family_model``), at the precision the service runs it in
(``models.precision.served_engine``) and told what the service would tell it, upscales it. PSNR-Y is
against the clean high-resolution image.

Printed per scale, set and setting: how many images went to the real-world model and to the JPEG
specialist, the mean PSNR-Y of bicubic, of each family's model and of the routed choice, and the routed
choice minus the fidelity model (mean and worst image). The policy's promise on clean images: mean ≥ -0.05 dB and
no image below -0.2 dB; on degraded ones, the real-world path.
"""

from __future__ import annotations

import argparse
import io
import zlib
from pathlib import Path
from typing import Any, get_args

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

from bench.machine import describe, header, table, write_json
from configs.quality_policy import DEFAULT_POLICY, Family, QualityPolicy, load_policy
from configs.settings import load_settings
from deployments.flow import inspection, quality
from deployments.flow.families import family_model
from deployments.upscaler.catalog import Catalog
from models.conditioning import bind
from models.degrade import convolve, gaussian_kernel, gaussian_noise
from models.evaluate import DEFAULT_EVAL_ROOT, bicubic, engine_upscaler, read_image
from models.metrics import psnr_y
from models.precision import served_engine

MAX_PIXELS = 100_000_000
THRESHOLD = 0.5  # the service's default QUALITY_THRESHOLD; every evaluation image is far below it
# Operations in order (noise σ per channel, blur σ in low-resolution pixels); a last ("jpeg", q) is the
# upload's own encoding, every other setting is uploaded as PNG.
SETTINGS: dict[str, tuple[tuple[str, float], ...]] = {
    "clean": (),
    "noise3": (("noise", 3),),
    "noise5": (("noise", 5),),
    "noise10": (("noise", 10),),
    "jpeg30": (("jpeg", 30),),
    "jpeg50": (("jpeg", 50),),
    "jpeg75": (("jpeg", 75),),
    "jpeg85": (("jpeg", 85),),
    "jpeg90": (("jpeg", 90),),
    "noise5+jpeg75": (("noise", 5), ("jpeg", 75)),
    "noise10+jpeg75": (("noise", 10), ("jpeg", 75)),
    "blur1.0": (("blur", 1.0),),
    "blur1.6": (("blur", 1.6),),
    "blur1.0+jpeg50": (("blur", 1.0), ("jpeg", 50)),
    "blur1.0+jpeg75": (("blur", 1.0), ("jpeg", 75)),
}


def upload(image: NDArray[np.uint8], setting: str, key: str) -> bytes:
    """``image`` degraded at ``setting`` (noise seeded by setting and image, as ``models.evaluate``
    does) and encoded as uploaded: JPEG at the setting's last quality, else PNG."""
    rng = np.random.default_rng(zlib.crc32(f"{setting}/{key}".encode()))
    ops = SETTINGS[setting]
    quality_ = int(ops[-1][1]) if ops and ops[-1][0] == "jpeg" else None
    for op, value in ops[:-1] if quality_ is not None else ops:
        image = (
            gaussian_noise(image, value, rng) if op == "noise" else convolve(image, gaussian_kernel(value, value, 0))
        )
    buffer = io.BytesIO()
    pil = Image.fromarray(image)
    if quality_ is None:
        pil.save(buffer, format="PNG", compress_level=1)
    else:
        pil.save(buffer, format="JPEG", quality=quality_)
    return buffer.getvalue()


def measure(data: bytes) -> tuple[NDArray[np.uint8], quality.ImageQuality]:
    """The upload's pixels as the flow decodes an image it upscales, and the metrics it measures on them."""
    probe = inspection.inspect(data, MAX_PIXELS)
    pixels = inspection.decode(probe, MAX_PIXELS).pixels
    score = inspection.quality_score(probe.width, probe.height)
    return pixels, quality.measure(pixels, score, probe.quantization)


class Served:
    """The bundled models the service routes to at ``scale`` (its catalogue, as ``bench.quality_sheet``
    reads it), each at the precision the service runs it in (``models.precision.served_engine``), and the
    one each family names (``family_model``: a family not served there names its stand-in)."""

    def __init__(self, scale: int) -> None:
        served = Catalog(load_settings(upscale_scale=scale), []).summaries()
        self.models = {}
        for family in get_args(Family):
            model = family_model(served, family, scale)
            if model is None:
                raise LookupError(f"no fidelity model is served at ×{scale}")
            self.models[family] = model.name
        self.engines = {name: served_engine(name, torch.device("cpu")) for name in set(self.models.values())}

    def psnr(self, families: set[str], pixels: NDArray[np.uint8], measured: quality.ImageQuality,
             hr: NDArray[np.uint8], scale: int) -> dict[str, float]:  # fmt: skip
        """PSNR-Y per family of ``families``, each model run once on ``pixels`` and told what the service
        would tell it (a degradation-aware model's measured values, ``models.conditioning``)."""
        by_name = {}
        for name in {self.models[f] for f in families}:
            engine = self.engines[name]
            told = bind(engine, quality.degradation(measured, pixels, engine.info.conditions).values())
            by_name[name] = psnr_y(engine_upscaler(told)(pixels), hr, scale)
        return {f: by_name[self.models[f]] for f in families}


def score_set(
    set_dir: Path, scale: int, setting: str, args: argparse.Namespace, served: Served, policies: list[QualityPolicy]
) -> list[dict[str, Any]]:
    """Per image of the set: its metrics, each policy's family and the PSNR-Y of bicubic and of each
    family's model (with ``--routed-only``, the fidelity model's and those a policy routed the image to)."""
    rows = []
    for hr_path in sorted((set_dir / f"x{scale}").glob("*_HR.png"))[: args.limit]:
        hr = read_image(hr_path)
        lr = read_image(hr_path.with_name(hr_path.name.replace("_HR", "_LR")))
        if lr.ndim == 2:  # a greyscale upload is measured and upscaled as RGB, as the flow decodes it
            lr, hr = np.repeat(lr[..., None], 3, axis=2), np.repeat(hr[..., None], 3, axis=2)
        pixels, measured = measure(upload(lr, setting, hr_path.name))
        metrics = measured.to_dict()
        families = [p.decide(metrics, THRESHOLD).model or "fidelity" for p in policies]
        wanted = {"fidelity", *families} if args.routed_only else set(served.models)
        psnr = served.psnr(wanted, pixels, measured, hr, scale)
        psnr["bicubic"] = psnr_y(bicubic(pixels, scale), hr, scale)
        rows.append({"image": hr_path.name.removesuffix("_HR.png"), "metrics": metrics, "families": families, **psnr})
    return rows


def summary(key: dict[str, Any], rows: list[dict[str, Any]], index: int) -> dict[str, Any]:
    """The routed choice under policy ``index`` against the fidelity model, over ``rows``."""
    families = [r["families"][index] for r in rows]
    routed = np.array([r[f] for r, f in zip(rows, families, strict=True)])
    delta = routed - np.array([r["fidelity"] for r in rows])
    mean = {k: float(np.mean([r[k] for r in rows])) if all(k in r for r in rows) else None
            for k in ("bicubic", *get_args(Family))}  # fmt: skip
    counts = {f"to {f}": families.count(f) for f in get_args(Family)[1:]}
    return {**key, "images": len(rows), **counts, **mean, "routed": float(routed.mean()),
            "routed-fidelity": float(delta.mean()), "worst": float(delta.min())}  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policies", type=Path, nargs="+", default=[DEFAULT_POLICY])
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--sets", nargs="+", default=["Set5", "Set14", "BSD100"])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--limit", type=int, help="at most this many images of each set (in name order)")
    parser.add_argument("--root", type=Path, default=DEFAULT_EVAL_ROOT)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--routed-only", action="store_true", help="run only the models some policy routes to")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    torch.set_num_threads(args.threads)
    policies = {str(path): load_policy(path) for path in args.policies}
    info = describe()
    print(header(info) + "\n", flush=True)
    summaries, details = [], {}
    columns = ["policy", "scale", "set", "setting", "images", "to real", "to jpeg", "bicubic", "fidelity", "real",
               "jpeg", "routed", "routed-fidelity", "worst"]  # fmt: skip
    for scale in args.scales:
        served = Served(scale)
        print(f"x{scale}: " + ", ".join(f"{f} {n}" for f, n in served.models.items()), flush=True)
        for setting in args.settings:
            for set_name in args.sets:
                rows = score_set(args.root / set_name, scale, setting, args, served, list(policies.values()))
                details[f"x{scale}/{setting}/{set_name}"] = rows
                for index in range(len(policies)):
                    key = {"policy": index, "scale": scale, "set": set_name, "setting": setting}
                    summaries.append(summary(key, rows, index))
                    print(table(summaries[-1:], columns).splitlines()[-1], flush=True)
    print("\n" + "\n".join(f"policy {i}: {path}" for i, path in enumerate(policies)))
    print(table(summaries, columns))
    report = {"machine": info, "policies": list(policies), "summaries": summaries, "images": details}
    write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
