"""Cost of the no-reference quality metrics (deployments/flow/quality.py) per image, by image size.

    python -m bench.quality [--sizes 640x480 1920x1080 3840x2160] [--repeat 30] [--json F]

Times ``quality.measure`` on decoded pixels (the upscale path) and ``quality.measure_image`` on a
Pillow image (the store path), on a photograph resized to each size; reports the best and the median
of ``--repeat`` calls, wall-clock and CPU time (CPU time is what the ingress pays when the machine is shared).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.machine import describe, header, table, write_json
from deployments.flow import quality
from models.data import shared_root


def timings(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    fn()
    wall, cpu = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return {"best_ms": min(wall) * 1e3, "median_ms": float(np.median(wall)) * 1e3,
            "median_cpu_ms": float(np.median(cpu)) * 1e3}  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["640x480", "1920x1080", "3840x2160"])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with Image.open(shared_root() / "datasets" / "photos" / "friends_by_Aitzol_Berasategi.jpg") as photo:
        source = photo.convert("RGB")
    rows = []
    for size in args.sizes:
        w, h = (int(v) for v in size.split("x"))
        image = source.resize((w, h), Image.Resampling.BILINEAR)
        pixels = np.asarray(image)
        calls: dict[str, Callable[[], object]] = {
            "pixels": partial(quality.measure, pixels, 1.0),
            "pillow": partial(quality.measure_image, image, w, 1.0),
        }
        rows += [{"size": size, "path": path, **timings(fn, args.repeat)} for path, fn in calls.items()]
    info = describe()
    print(header(info))
    print(table(rows, list(rows[0])))
    report = {"machine": info, "rows": rows}
    write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
