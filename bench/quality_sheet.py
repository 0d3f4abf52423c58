"""A before/after sheet of real JPEG photographs through the fidelity and the real-world model.

    python -m bench.quality_sheet [--out docs/quality-sheet.png] [--scale 2]

Each row is one of ``shared/datasets/photos`` (camera photographs, CC-BY-4.0 / CC0, credited in the
sheet and in the README) made into a typical small web upload: downscaled to a quarter with Pillow and
saved as JPEG quality 50. A crop of it is shown, left to right, as uploaded (pixels repeated), bicubic,
the fidelity model and the real-world model, all ×scale. The row's metrics and the quality policy's
choice are printed beside it.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from configs.quality_policy import load_policy
from deployments.flow import quality
from models.data import shared_root
from models.evaluate import bicubic
from models.precision import served_engine

PHOTOS = (  # file, crop centre as a fraction of the small image
    ("friends_by_Aitzol_Berasategi.jpg", (0.5, 0.45)),
    ("Wine_by_Jakkub_Mede.jpg", (0.5, 0.5)),
    ("picosdeeuropa_by_Aitzol_Berasategi.jpg", (0.55, 0.45)),
)
CROP = 128


def small_upload(path: Path) -> tuple[NDArray[np.uint8], bytes]:
    with Image.open(path) as photo:
        small = photo.convert("RGB").resize((photo.width // 4, photo.height // 4), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=50)
    with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
        return np.asarray(decoded.convert("RGB")), buffer.getvalue()


def row(path: Path, centre: tuple[float, float], scale: int, engines: dict[str, object]) -> tuple[Image.Image, str]:
    pixels, data = small_upload(path)
    with Image.open(io.BytesIO(data)) as header:
        metrics = quality.measure(
            pixels, pixels.shape[0] * pixels.shape[1] / (3840 * 2160), getattr(header, "quantization", None)
        )
    decision = load_policy().decide(metrics.routing_values(), 0.5)
    y = int(centre[1] * pixels.shape[0]) - CROP // 2
    x = int(centre[0] * pixels.shape[1]) - CROP // 2
    crop = np.ascontiguousarray(pixels[y : y + CROP, x : x + CROP])
    side = CROP * scale
    panels = [
        Image.fromarray(crop).resize((side, side), Image.Resampling.NEAREST),
        Image.fromarray(bicubic(crop, scale)),
    ]
    panels += [Image.fromarray(e.upscale_image(crop)) for e in engines.values()]  # type: ignore[attr-defined]
    strip = Image.new("RGB", (side * len(panels), side))
    for i, panel in enumerate(panels):
        strip.paste(panel, (i * side, 0))
    text = (f"{path.stem.replace('_', ' ')} - JPEG q{metrics.jpeg_quality}, noise {metrics.noise:.1f}, "
            f"sharpness {metrics.sharpness:.2f} -> rule {decision.rule}: {decision.model}")  # fmt: skip
    return strip, text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/quality-sheet.png"))
    parser.add_argument("--scale", type=int, choices=[2, 4], default=2)
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    names = [f"vcsr-m-x{args.scale}", f"vcsr-real-x{args.scale}"]
    engines: dict[str, object] = {n: served_engine(n, torch.device("cpu"), "fp32") for n in names}
    photos = shared_root() / "datasets" / "photos"
    rows = [row(photos / name, centre, args.scale, engines) for name, centre in PHOTOS]
    side, header, caption = CROP * args.scale, 22, 18
    sheet = Image.new("RGB", (rows[0][0].width, header + len(rows) * (side + caption)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, label in enumerate(["uploaded (JPEG q50)", "bicubic", *names]):
        draw.text((i * side + 6, 5), label, fill="black")
    for k, (strip, text) in enumerate(rows):
        top = header + k * (side + caption)
        draw.text((6, top + 3), text, fill="black")
        sheet.paste(strip, (0, top + caption))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out} ({sheet.width}×{sheet.height})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
