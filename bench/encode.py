"""PNG encoding of upscaled outputs: time and size per zlib level and strategy.

    python -m bench.encode [--photos astronaut.png coffee.png chelsea.png] [--json F]

Each photograph (scikit-image's) is resized to 1920×1080 and upscaled ×2 by the default model, as the
service would; the 4K output is then encoded by ``deployments.upscaler.encode`` at the levels users can
set (``PNG_COMPRESS_LEVEL``), and by Pillow's default strategy at level 1 for comparison (what the
service did before it chose zlib's run-length strategy for the fast levels). Best of 3 per encoding.
"""

from __future__ import annotations

import argparse
import io
import os
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from bench.machine import describe, header, table, write_json
from bench.service import photo
from deployments.upscaler.encode import encode
from models.engine import keep_large_allocations
from models.precision import served_engine
from models.registry import default_model_name


def best_of(fn: Any, runs: int = 3) -> tuple[float, int]:
    """Seconds of the fastest of ``runs`` calls, and the size in bytes of what it returned."""
    best, size = float("inf"), 0
    for _ in range(runs):
        started = time.perf_counter()
        size = len(fn())
        best = min(best, time.perf_counter() - started)
    return best, size


def ours(pixels: np.ndarray, level: int) -> bytes:
    return encode(pixels, "png", level).data


def pillow_default_strategy(pixels: np.ndarray, level: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", compress_level=level)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", nargs="+", default=["astronaut.png", "coffee.png", "chelsea.png"])
    parser.add_argument("--levels", nargs="+", type=int, default=[1, 3, 6])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    info = describe()
    print(header(info), flush=True)
    keep_large_allocations()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    name = default_model_name(2)
    engine = served_engine(name, torch.device("cpu"))
    rows: list[dict[str, Any]] = []
    for source in args.photos:
        small = np.asarray(photo(source).resize((1920, 1080), Image.Resampling.BICUBIC))
        pixels = engine.upscale_image(small, tile=1024)
        variants: list[tuple[str, Any]] = [(f"level {lv}", partial(ours, pixels, lv)) for lv in args.levels]
        variants.append(("level 1, Pillow's default strategy", partial(pillow_default_strategy, pixels, 1)))
        for label, fn in variants:
            seconds, size = best_of(fn)
            rows.append({"photo": source, "encoding": label, "ms": seconds * 1e3, "mb": size / 1e6})
            print(table(rows[-1:], list(rows[-1])).splitlines()[-1], flush=True)
    print("\n" + table(rows, ["photo", "encoding", "ms", "mb"]))
    report = {"machine": info, "settings": vars(args) | {"json": str(args.json)}, "model": name, "rows": rows}
    write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
