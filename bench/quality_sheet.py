"""A before/after sheet of camera photographs, made into degraded small uploads, through the service's route.

    python -m bench.quality_sheet [--out docs/quality-sheet.png] [--scale 2] [--whole]

Each row is one of ``shared/datasets/photos`` (camera photographs, credited on the sheet and in the
README) at half size (Lanczos, antialiased: the reference), downscaled ×scale with Pillow's bicubic (the
evaluation sets' protocol) and made into the file a client would upload at one of
``bench.route_quality.SETTINGS`` (JPEG q50; Gaussian noise σ10 saved as PNG; noise σ5 then JPEG 75 as
``models.evaluate --degraded`` does; clean PNG), seeded per setting and photo as those benchmarks do.

The route is the service's own, as for an upload with no ``model`` field: the flow's functions decode
and measure the file (``route_quality.measure``: ``inspection`` → ``quality.measure``), the quality
policy the service is configured with (``QUALITY_POLICY``) decides, and the upscaler's catalogue
(``Catalog.summaries``: the model serving each family at the scale) names the model through the
flow's own ``families.family_model``, as ``Flow._policy_model`` does; a degradation-aware model would be
bound to what was measured (``quality.degradation``). ``tests/bench/test_quality_sheet.py`` holds the
route to the flow's own answer.

A crop is shown, left to right, as uploaded (pixels repeated), bicubic, the fidelity model (what
``model=vcsr-m-x<scale>`` gives) and the routed model, all ×scale, in fp32; each upscaled crop carries its
PSNR-Y against the reference. The caption gives the upload, its measured metrics and the rule.
``--whole`` also prints each row's PSNR-Y over the whole image (a crop is a small sample of it).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from bench.route_quality import SETTINGS, measure, upload
from configs.model_registry import load_registry
from configs.quality_policy import QualityPolicy, load_policy
from configs.settings import load_settings
from deployments.contracts.values import Degradation, ModelSummary
from deployments.flow import quality
from deployments.flow.families import family_model
from deployments.upscaler.catalog import Catalog
from models.conditioning import bind
from models.data import shared_root
from models.engine import TileEngine
from models.evaluate import bicubic
from models.metrics import psnr_y
from models.precision import build_engine

CROP = 128  # low-resolution pixels shown per row
MARGIN = 16  # context upscaled around the crop and cut off, so no panel shows tile-border effects


@dataclass(frozen=True)
class Sample:
    """One row: a photo (file in ``shared/datasets/photos``), its credit, the upload setting, and the
    crop's centre as a fraction of the image."""

    photo: str
    credit: str
    setting: str
    centre: tuple[float, float]


SAMPLES = (
    Sample("friends_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi, CC-BY-4.0", "jpeg50", (0.5, 0.45)),
    Sample("Wine_by_Jakkub_Mede.jpg", "Jakub Mede, CC-BY-4.0", "jpeg50", (0.5, 0.5)),
    Sample("Picture_0B_by_freespace.jpg", 'Trevor "Freespace", CC-BY-4.0', "noise10", (0.42, 0.4)),
    Sample("seeding_by_Clements_Engelhardt.jpg", "Clemens Engelhardt, CC0-1.0", "noise5+jpeg75", (0.29, 0.33)),
    Sample("picosdeeuropa_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi, CC-BY-4.0", "clean", (0.55, 0.45)),
)


@dataclass(frozen=True)
class Route:
    """What the service makes of one upload sent with no ``model`` field."""

    rule: str
    model: ModelSummary
    metrics: quality.ImageQuality
    degradation: Degradation  # what the routed model is told (a plain model ignores it)


def describe(setting: str) -> str:
    """A ``route_quality.SETTINGS`` entry in words, e.g. ``noise sigma 5, then JPEG q75``."""
    # In ASCII: Pillow's default font has no σ.
    words = {"noise": "noise sigma {:g}", "jpeg": "JPEG q{:g}", "blur": "blur sigma {:g}"}
    ops = SETTINGS[setting]
    text = ", then ".join(words[op].format(value) for op, value in ops) or "clean"
    return text if ops and ops[-1][0] == "jpeg" else f"{text}, saved as PNG"


def service_route(
    metrics: quality.ImageQuality,
    pixels: NDArray[np.uint8],
    policy: QualityPolicy,
    threshold: float,
    served: list[ModelSummary],
    scale: int,
) -> Route:
    """The policy's rule for ``metrics`` and the served model of its family at ``scale`` (the fidelity
    model when that family is not served), as the flow picks them for an upload without a model."""
    decision = policy.decide(metrics.routing_values(), threshold)
    model = family_model(served, decision.model or "fidelity", scale)
    if model is None:
        raise LookupError(f"no fidelity model is served at ×{scale}")
    return Route(decision.rule, model, metrics, quality.degradation(metrics, pixels, model.conditions))


def photo_pair(path: Path, scale: int) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """The reference (the photo at half size) and its clean low-resolution version (bicubic ÷``scale``)."""
    with Image.open(path) as photo:
        step = 2 * scale  # both sizes exact, so a crop of one lines up with the other
        w, h = photo.width // step * step, photo.height // step * step
        hr = photo.convert("RGB").crop((0, 0, w, h)).resize((w // 2, h // 2), Image.Resampling.LANCZOS)
    lr = hr.resize((hr.width // scale, hr.height // scale), Image.Resampling.BICUBIC)
    return np.asarray(hr), np.asarray(lr)


def upscale_crop(upscale: TileEngine | None, image: NDArray[np.uint8], top: int, left: int, scale: int) -> Image.Image:
    """The ``CROP``² window at (``top``, ``left``) upscaled with ``MARGIN`` pixels of context (bicubic
    when ``upscale`` is None)."""
    window = np.ascontiguousarray(image[top - MARGIN : top + CROP + MARGIN, left - MARGIN : left + CROP + MARGIN])
    out = bicubic(window, scale) if upscale is None else upscale.upscale_image(window)
    cut = MARGIN * scale
    return Image.fromarray(out[cut : cut + CROP * scale, cut : cut + CROP * scale])


def labelled(panel: Image.Image, reference: NDArray[np.uint8], scale: int) -> Image.Image:
    """``panel`` with its PSNR-Y against ``reference`` (``scale`` pixels shaved) written in a corner."""
    draw = ImageDraw.Draw(panel)
    text = f"PSNR-Y {psnr_y(np.asarray(panel), reference, scale):.2f} dB"
    draw.rectangle((0, panel.height - 16, 6 * len(text) + 8, panel.height), fill="white")
    draw.text((4, panel.height - 14), text, fill="black")
    return panel


class Service:
    """The service as configured here (settings and ``.env``, at ``scale``): its quality policy and
    threshold, the upscaler's catalogue, and each model's engine in fp32, made once."""

    def __init__(self, scale: int) -> None:
        settings = load_settings(upscale_scale=scale)
        self.scale, self.threshold = scale, settings.quality_threshold
        self.policy = load_policy(settings.quality_policy)
        self.catalog = Catalog(settings, load_registry(settings.model_registry))
        self.served = self.catalog.summaries()
        self.fidelity = next(m for m in self.served if m.routed_as == "fidelity" and m.scale == scale)
        self._engines: dict[str, TileEngine] = {}

    def _engine(self, model: ModelSummary, degradation: Degradation) -> TileEngine:
        """``model``'s engine as the upscaler runs it on an upload measured as ``degradation``."""
        if model.name not in self._engines:
            path = self.catalog.specs[model.name].path
            losses = self.catalog.precision_loss_db(model.name)
            self._engines[model.name] = build_engine(
                self.catalog.load(model.name), path, torch.device("cpu"), "fp32", losses
            )
        return bind(self._engines[model.name], degradation.values())

    def upload(self, sample: Sample, photos: Path) -> tuple[NDArray[np.uint8], NDArray[np.uint8], Route]:
        """The row's reference, its upload's pixels as the flow decodes them, and the service's route."""
        hr, lr = photo_pair(photos / sample.photo, self.scale)
        pixels, metrics = measure(upload(lr, sample.setting, sample.photo))
        return hr, pixels, service_route(metrics, pixels, self.policy, self.threshold, self.served, self.scale)

    def engines(self, route: Route, pixels: NDArray[np.uint8]) -> tuple[TileEngine, TileEngine]:
        """The fidelity model's engine (``model=`` it) and the routed model's, each told what it reads."""
        fidelity = quality.degradation(route.metrics, pixels, self.fidelity.conditions)
        return self._engine(self.fidelity, fidelity), self._engine(route.model, route.degradation)


def window(shape: tuple[int, ...], centre: tuple[float, float]) -> tuple[int, int]:
    """Top-left of the ``CROP``² window nearest ``centre`` with ``MARGIN`` of context inside the image."""
    h, w = shape[:2]
    top = min(max(int(centre[1] * h) - CROP // 2, MARGIN), h - CROP - MARGIN)
    left = min(max(int(centre[0] * w) - CROP // 2, MARGIN), w - CROP - MARGIN)
    return top, left


def row(sample: Sample, service: Service, photos: Path) -> tuple[Image.Image, tuple[str, str]]:
    """One row's panels side by side, and its two caption lines."""
    s = service.scale
    hr, pixels, route = service.upload(sample, photos)
    top, left = window(pixels.shape, sample.centre)
    reference = hr[top * s : (top + CROP) * s, left * s : (left + CROP) * s]
    shown = Image.fromarray(np.ascontiguousarray(pixels[top : top + CROP, left : left + CROP]))
    panels = [shown.resize((CROP * s, CROP * s), Image.Resampling.NEAREST)]
    for engine in (None, *service.engines(route, pixels)):
        panels.append(labelled(upscale_crop(engine, pixels, top, left, s), reference, s))
    ImageDraw.Draw(panels[-1]).text((4, 3), route.model.name, fill="white", stroke_width=2, stroke_fill="black")
    strip = Image.new("RGB", (sum(p.width for p in panels), panels[0].height))
    for i, panel in enumerate(panels):
        strip.paste(panel, (i * panel.width, 0))
    m = route.metrics
    jpeg = f"JPEG q{m.jpeg_quality}" if m.jpeg_quality is not None else "not a JPEG"
    return strip, (
        f"{Path(sample.photo).stem.replace('_', ' ')} ({sample.credit}), uploaded as {describe(sample.setting)}",
        f"measured: {jpeg}, noise {m.noise:.1f}, sharpness {m.sharpness:.2f} -> rule {route.rule}: {route.model.name}",
    )


def whole_image_psnr(sample: Sample, service: Service, photos: Path) -> dict[str, float]:
    """PSNR-Y of the whole upscaled image against the reference: bicubic, the fidelity model, the route."""
    hr, pixels, route = service.upload(sample, photos)
    fidelity, routed = service.engines(route, pixels)
    outputs = {
        "bicubic": bicubic(pixels, service.scale),
        "fidelity": fidelity.upscale_image(pixels),
        f"route ({route.model.name})": routed.upscale_image(pixels),
    }
    return {name: round(psnr_y(out, hr, service.scale), 2) for name, out in outputs.items()}


def render(rows: list[tuple[Image.Image, tuple[str, str]]], labels: list[str]) -> Image.Image:
    side, header, caption = rows[0][0].height, 22, 30
    sheet = Image.new("RGB", (rows[0][0].width, header + len(rows) * (side + caption)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, label in enumerate(labels):
        draw.text((i * side + 6, 5), label, fill="black")
    for k, (strip, lines) in enumerate(rows):
        top = header + k * (side + caption)
        draw.text((6, top + 2), "\n".join(lines), fill="black", spacing=3)
        sheet.paste(strip, (0, top + caption))
    return sheet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/quality-sheet.png"))
    parser.add_argument("--scale", type=int, choices=[2, 4], default=2)
    parser.add_argument("--whole", action="store_true", help="also print each row's whole-image PSNR-Y (slower)")
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    service = Service(args.scale)
    photos = shared_root() / "datasets" / "photos"
    rows = [row(sample, service, photos) for sample in SAMPLES]
    for sample, (_, lines) in zip(SAMPLES, rows, strict=True):
        print(" | ".join(lines))
        if args.whole:
            print(f"  whole image, PSNR-Y dB: {whole_image_psnr(sample, service, photos)}", flush=True)
    labels = [
        "uploaded (pixels repeated)",
        "bicubic",
        f"model={service.fidelity.name}",
        "the service's route (no model)",
    ]
    sheet = render(rows, labels)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out} ({sheet.width}×{sheet.height}, {args.out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
