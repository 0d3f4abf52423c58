"""How the quality policy routes a set of clean and degraded images, through the service's own functions.

    python -m bench.routing [--policy configs/quality_policy.yaml] [--scales 2 4] [--json F]

The routing set is made here from the training images and the shared photographs (never from the
evaluation sets): each source is bicubic-downscaled ×2 and ×4 (the clean uploads; Urban100's
low-resolution images are made the same way, and downscaling packs the texture densely), and every
clean image is degraded again as ``VARIANTS`` lists (Gaussian noise per channel, JPEG, blur and mixes),
then written as the file a client would upload (PNG, or JPEG at the variant's quality). Each file goes
through ``inspection.inspect`` → ``inspection.decode`` → ``quality.measure`` → the policy, as in the flow.

Printed: the confusion matrix (clean images routed to the real-world model, degraded ones routed to the
fidelity model), the route of each variant, the noise estimate against the σ that was added, and the
CPU milliseconds ``quality.measure`` took per image. A variant's ``expect`` says which model should get it,
judged by the picture (``python -m bench.route_quality`` measures both models on each degradation):
``mild`` ones (noise σ ≤ 3, JPEG quality 90) are close calls, reported but not counted as errors.
"""

from __future__ import annotations

import argparse
import io
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from bench.machine import describe, header, table, write_json
from configs.quality_policy import DEFAULT_POLICY, load_policy
from deployments.flow import inspection, quality
from models.data import shared_root
from models.degrade import convolve, gaussian_kernel, gaussian_noise

Expect = Literal["fidelity", "real", "mild"]
MAX_PIXELS = 100_000_000
THRESHOLD = 0.5  # the service's default QUALITY_THRESHOLD; every image here is far below it


@dataclass(frozen=True)
class Variant:
    """A degradation of a clean image: ops in order, then saved as ``quality`` JPEG (None: PNG)."""

    ops: tuple[tuple[str, float], ...]
    expect: Expect
    quality: int | None = None

    @property
    def sigma(self) -> float:
        return next((v for op, v in self.ops if op == "noise"), 0.0)


VARIANTS: dict[str, Variant] = {
    "clean": Variant((), "fidelity"),
    **{f"noise{s:g}": Variant((("noise", s),), "mild" if s <= 3 else "real") for s in (2, 3, 5, 7, 10, 15)},
    **{f"jpeg{q}": Variant((), "mild" if q >= 90 else "real", q) for q in (20, 30, 50, 70, 90)},
    "blur1.0": Variant((("blur", 1.0),), "real"),
    "blur1.6": Variant((("blur", 1.6),), "real"),
    "noise5+jpeg75": Variant((("noise", 5),), "real", 75),
    "noise10+jpeg75": Variant((("noise", 10),), "real", 75),
    "blur1.0+noise5": Variant((("blur", 1.0), ("noise", 5)), "real"),
}


def sources(root: Path) -> Iterator[tuple[str, Image.Image]]:
    """Every 5th BSD200 image, every 4th T91 image and the nine photographs (decoded at half size, which
    also averages away most of their JPEG artefacts and sensor noise)."""
    train = root / "datasets" / "train"
    paths = sorted((train / "BSD200").glob("*.png"))[::5] + sorted((train / "T91").glob("*.png"))[::4]
    for path in paths:
        with Image.open(path) as image:
            yield path.stem, image.convert("RGB")
    for path in sorted((root / "datasets" / "photos").glob("*.jpg")):
        with Image.open(path) as photo:
            photo.draft("RGB", (photo.width // 2, photo.height // 2))
            yield path.stem.split("_by_")[0], photo.convert("RGB")


def degrade(image: NDArray[np.uint8], variant: Variant, seed: int) -> bytes:
    """``image`` degraded by ``variant`` and encoded as the upload a client would send."""
    rng = np.random.default_rng(seed)
    for op, value in variant.ops:
        if op == "noise":
            image = gaussian_noise(image, value, rng)
        else:
            image = convolve(image, gaussian_kernel(value, value, 0.0))
    buffer = io.BytesIO()
    if variant.quality is None:
        Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    else:
        Image.fromarray(image).save(buffer, format="JPEG", quality=variant.quality)
    return buffer.getvalue()


def measure(data: bytes) -> tuple[quality.ImageQuality, float]:
    """The metrics the flow measures on an upload it upscales, and the CPU ms ``quality.measure`` took
    (CPU time: on a shared machine the wall clock mostly measures the neighbours)."""
    probe = inspection.inspect(data, MAX_PIXELS)
    pixels = inspection.decode(probe, MAX_PIXELS).pixels
    started = time.process_time()
    metrics = quality.measure(pixels, inspection.quality_score(probe.width, probe.height), probe.quantization)
    return metrics, (time.process_time() - started) * 1e3


def run(policy_path: Path, scales: list[int], root: Path) -> list[dict[str, Any]]:
    """One row per routed image: source, scale, variant, expected family, metrics, rule and family."""
    policy = load_policy(policy_path)
    rows: list[dict[str, Any]] = []
    for index, (name, image) in enumerate(sources(root)):
        for scale in scales:
            small = np.asarray(image.resize((image.width // scale, image.height // scale), Image.Resampling.BICUBIC))
            for label, variant in VARIANTS.items():
                metrics, ms = measure(degrade(small, variant, seed=index))
                decision = policy.decide(metrics.routing_values(), THRESHOLD)
                rows.append({
                    "source": name, "scale": scale, "variant": label, "expect": variant.expect,
                    "sigma": variant.sigma, "noise": metrics.noise, "sharpness": metrics.sharpness,
                    "jpeg_quality": metrics.jpeg_quality, "rule": decision.rule, "model": decision.model, "ms": ms,
                })  # fmt: skip
    return rows


def confusion(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Images per expected family by where they went: the fidelity model, or a degraded-image one (the
    real-world model or the JPEG specialist, both counted as "to real")."""
    counts = Counter((r["expect"], "real" if r["model"] == "jpeg" else r["model"]) for r in rows)
    return [
        {"expected": e, "images": sum(counts[(e, m)] for m in ("fidelity", "real")),
         "to fidelity": counts[(e, "fidelity")], "to real": counts[(e, "real")]}
        for e in ("fidelity", "real", "mild")
    ]  # fmt: skip


def per_variant(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[r["variant"]].append(r)
    out = []
    for label, group in groups.items():
        noise = np.array([r["noise"] for r in group])
        sigma = VARIANTS[label].sigma
        error = np.abs(noise - sigma) / sigma if sigma else None
        rules = Counter(r["rule"] for r in group)
        out.append({
            "variant": label, "expect": VARIANTS[label].expect, "images": len(group),
            "to real": sum(r["model"] == "real" for r in group),
            "noise median": float(np.median(noise)), "noise min": float(noise.min()), "noise max": float(noise.max()),
            "|error| median %": None if error is None else float(np.median(error) * 100),
            "|error| max %": None if error is None else float(error.max() * 100),
            "rules": " ".join(f"{k}:{v}" for k, v in rules.most_common()),
        })  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY)
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = run(args.policy, args.scales, shared_root())
    info = describe()
    print(header(info))
    print(f"policy {args.policy}\n")
    print(table(confusion(rows), ["expected", "images", "to fidelity", "to real"]))
    print()
    print(table(per_variant(rows), ["variant", "expect", "images", "to real", "noise median", "noise min",
                                    "noise max", "|error| median %", "|error| max %", "rules"]))  # fmt: skip
    wrong = [r for r in rows if r["expect"] == "fidelity" and r["model"] == "real"]
    for r in wrong:
        print(f"clean routed to real: {r['source']} x{r['scale']} noise {r['noise']} sharpness {r['sharpness']}")
    ms = np.array([r["ms"] for r in rows])
    spread = f"median {np.median(ms):.2f} ms, p95 {np.percentile(ms, 95):.2f} ms, max {ms.max():.2f} ms"
    print(f"\nquality.measure, CPU time per image ({len(rows)} images): {spread}")
    report = {"machine": info, "policy": str(args.policy), "confusion": confusion(rows), "variants": per_variant(rows),
              "rows": rows}  # fmt: skip
    write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
