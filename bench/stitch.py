"""Assembling upscaled tiles into the output image: before (stitch a channel-first canvas, then copy it
to H×W×C) against after (paste each tile into the preallocated H×W×C uint8 output), one run.

    python -m bench.stitch [--width 1920 --height 1080] [--scale 4] [--tile 1024] [--repeats 5]

Random tile outputs of the service's balanced layout stand in for the model's. The two are run in
turn, ``--repeats`` rounds; medians of the CPU time, their ratio, and the full-size arrays each holds
at its peak besides the tiles (before: the canvas and the H×W×C copy; after: the output alone).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from models.engine import upscaled_like
from models.tiling import plan_tiles, stitch


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--margin", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    h, w, s = args.height, args.width, args.scale
    tiles = plan_tiles(h, w, args.tile, args.margin, "balanced")
    outputs = [
        torch.randint(
            0, 256, (3, s * (t.rows.stop - t.rows.start), s * (t.cols.stop - t.cols.start)), dtype=torch.uint8
        )
        for t in tiles
    ]
    image = np.zeros((h, w, 3), np.uint8)

    def before() -> np.ndarray:
        return np.ascontiguousarray(stitch(outputs, tiles, s, h, w).permute(1, 2, 0).numpy())

    def after() -> np.ndarray:
        out, (sink,) = upscaled_like(image, s)
        for output, tile in zip(outputs, tiles, strict=True):
            sink.put(output, tile, s)
        return out

    times: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(args.repeats):
        for name, fn in (("before", before), ("after", after)):
            started = time.thread_time()
            result = fn()
            times[name].append(time.thread_time() - started)
    assert np.array_equal(before(), result)
    b, a = statistics.median(times["before"]), statistics.median(times["after"])
    mb = h * w * s * s * 3 / 1e6
    print(f"{w}x{h} x{s} in {len(tiles)} tiles of {args.tile}: output {mb:.0f} MB")
    print(f"before (stitch + H×W×C copy): {b * 1e3:.0f} ms CPU, 2 full-size arrays ({2 * mb:.0f} MB)")
    print(f"after (paste into the output): {a * 1e3:.0f} ms CPU, 1 full-size array ({mb:.0f} MB)")
    print(f"after / before: {a / b:.2f}")


if __name__ == "__main__":
    main()
