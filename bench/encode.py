"""Lossless encoders for upscaled outputs: CPU time and size, every candidate against Pillow in one run.

    python -m bench.encode [--photos astronaut.png coffee.png chelsea.png] [--x4 astronaut.png]
                           [--repeats 5] [--json F] [--encoders service Pillow …]

Each photograph (scikit-image's) is resized to 1920×1080 and upscaled by the default model, as the
service would: ×2 for every photo (4K outputs), ×4 for ``--x4`` (a 7680×4320 output). Every candidate
then encodes it ``--repeats`` times, the candidates interleaved round by round so the machine's noise
falls on all of them alike; the table gives the median CPU time of the process's threads (and wall time)
and each candidate's time and size as ratios to what the service used before this round — Pillow's
PNG at level 1 with zlib's run-length strategy — measured in the same rounds.

Candidates: the service's writer (``deployments/upscaler/png.py``: Average filter, ISA-L levels 1–2, and
level 1 in bands on every core as the upscaler runs it),
Pillow at levels 1 (run-length) and 6, the same NumPy filters with other deflaters (zlib-ng, libdeflate,
ISA-L with the Up filter), fpng (Up filter, its own deflate; RGB/RGBA only and no metadata chunks),
libpng through imagecodecs, and WebP lossless (Pillow, method 0). The optional ones run when their
package is installed: ``pip install fpng deflate imagecodecs zlib-ng``. Every output is decoded again
and compared with the pixels, so a candidate that is not lossless fails the run.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import statistics
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from isal import isal_zlib
from PIL import Image

from bench.machine import describe, header, table, write_json
from bench.service import photo
from deployments.upscaler.png import average_filter, write_png
from models.engine import keep_large_allocations
from models.precision import served_engine
from models.registry import default_model_name

Encoder = Callable[[np.ndarray], bytes]
BASELINE = "Pillow level 1 (run-length; before)"
CORES = len(os.sched_getaffinity(0))


def pillow_png(level: int, strategy: int | None = None) -> Encoder:
    def encode(pixels: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        options = {"compress_level": level} | ({"compress_type": strategy} if strategy is not None else {})
        Image.fromarray(pixels).save(buffer, "PNG", **options)
        return buffer.getvalue()

    return encode


def webp_lossless(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "WEBP", lossless=True, method=0, quality=0)
    return buffer.getvalue()


def up_filter(pixels: np.ndarray) -> np.ndarray:
    rows = pixels.reshape(pixels.shape[0], -1)
    out = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
    out[:, 0], out[0, 1:] = 2, rows[0]
    np.subtract(rows[1:], rows[:-1], out=out[1:, 1:])
    return out


def average_filtered(pixels: np.ndarray) -> np.ndarray:
    rows = pixels.reshape(pixels.shape[0], -1)
    above = np.concatenate([np.zeros_like(rows[:1]), rows[:-1]])
    return average_filter(rows, above, pixels.shape[2] if pixels.ndim == 3 else 1)


def numpy_png(pixels: np.ndarray, filtered: np.ndarray, deflate: Callable[[np.ndarray], bytes | bytearray]) -> bytes:
    """A PNG around ``filtered`` rows deflated by ``deflate`` (no metadata): the deflaters compared."""
    from deployments.upscaler.png import COLOUR_TYPES, SIGNATURE, chunk

    channels = pixels.shape[2] if pixels.ndim == 3 else 1
    ihdr = np.array([pixels.shape[1], pixels.shape[0]], ">u4").tobytes() + bytes([8, COLOUR_TYPES[channels], 0, 0, 0])
    idat = deflate(filtered)
    return SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", bytes(idat)) + chunk(b"IEND")


def candidates() -> dict[str, Encoder]:
    found: dict[str, Encoder] = {
        "service writer, ISA-L 1 (after)": lambda p: write_png(p, 1),
        "service writer, ISA-L 2": lambda p: write_png(p, 2),
        f"service writer, ISA-L 1, {CORES} threads (bands)": lambda p: write_png(p, 1, threads=CORES),
        BASELINE: pillow_png(1, zlib.Z_RLE),
        "Pillow level 6": pillow_png(6),
        "Up filter + ISA-L 1": lambda p: numpy_png(p, up_filter(p), lambda f: isal_zlib.compress(f, 1)),
        "WebP lossless, method 0": webp_lossless,
    }
    if importlib.util.find_spec("deflate"):
        import deflate

        found["Average + libdeflate 1"] = lambda p: numpy_png(
            p, average_filtered(p), lambda f: deflate.zlib_compress(f, 1)
        )
    if importlib.util.find_spec("zlib_ng"):
        from zlib_ng import zlib_ng

        found["Average + zlib-ng 2"] = lambda p: numpy_png(p, average_filtered(p), lambda f: zlib_ng.compress(f, 2))
    if importlib.util.find_spec("fpng"):
        import fpng

        found["fpng (no ICC/EXIF)"] = fpng.from_ndarray
    if importlib.util.find_spec("imagecodecs"):
        import imagecodecs

        found["libpng (imagecodecs) level 1"] = lambda p: bytes(imagecodecs.png_encode(p, level=1))
    return found


def measure(pixels: np.ndarray, encoders: dict[str, Encoder], repeats: int) -> dict[str, dict[str, float]]:
    """Median CPU (every thread of this process: the banded writer uses several) and wall seconds per
    encoder over interleaved rounds, and the output size."""
    cpu: dict[str, list[float]] = {name: [] for name in encoders}
    wall: dict[str, list[float]] = {name: [] for name in encoders}
    size: dict[str, int] = {}
    for _ in range(repeats):
        for name, encode in encoders.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            data = encode(pixels)
            cpu[name].append(time.process_time() - started_cpu)
            wall[name].append(time.perf_counter() - started)
            if name not in size:
                decoded = np.asarray(Image.open(io.BytesIO(data)).convert(Image.fromarray(pixels).mode))
                if not np.array_equal(decoded, pixels):
                    raise SystemExit(f"{name} is not lossless")
                size[name] = len(data)
    return {n: {"cpu": statistics.median(cpu[n]), "wall": statistics.median(wall[n]), "bytes": size[n]} for n in cpu}


def rows_for(label: str, pixels: np.ndarray, encoders: dict[str, Encoder], repeats: int) -> list[dict[str, Any]]:
    results = measure(pixels, encoders, repeats)
    base = results[BASELINE]
    return [
        {
            "output": label,
            "encoder": name,
            "cpu ms": r["cpu"] * 1e3,
            "wall ms": r["wall"] * 1e3,
            "MB": r["bytes"] / 1e6,
            "cpu / before": r["cpu"] / base["cpu"],
            "size / before": r["bytes"] / base["bytes"],
        }
        for name, r in results.items()
    ]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", nargs="+", default=["astronaut.png", "coffee.png", "chelsea.png"])
    parser.add_argument("--x4", nargs="*", default=["astronaut.png"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--encoders", nargs="*", help="only the candidates whose name holds one of these")
    args = parser.parse_args(argv)
    info = describe()
    print(header(info), flush=True)
    keep_large_allocations()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    encoders = {
        name: encoder
        for name, encoder in candidates().items()
        if name == BASELINE or not args.encoders or any(part in name for part in args.encoders)
    }
    rows: list[dict[str, Any]] = []
    columns = ["output", "encoder", "cpu ms", "wall ms", "MB", "cpu / before", "size / before"]
    for scale, sources in ((2, args.photos), (4, args.x4)):
        engine = served_engine(default_model_name(scale), torch.device("cpu"))
        for source in sources:
            small = np.asarray(photo(source).resize((1920, 1080), Image.Resampling.BICUBIC))
            pixels = engine.upscale_image(small, tile=1024)
            label = f"{source} ×{scale} ({pixels.shape[1]}×{pixels.shape[0]})"
            rows += rows_for(label, pixels, encoders, args.repeats)
            print(table(rows[-len(encoders) :], columns), flush=True)
    report = {"machine": info, "settings": vars(args) | {"json": str(args.json)}, "rows": rows}
    write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
