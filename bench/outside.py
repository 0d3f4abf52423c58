"""The CPU a 1080p upscale spends outside the model, before and after this round, in one run.

    python -m bench.outside [--repeats 3]

For a 1080p JPEG (scikit-image's astronaut, quality 90) at ×2 and ×4, in this process: decode it as
the flow does, run the served model's forward passes on its tiles (1024-px balanced, as the service),
then assemble and encode the output twice — as before this round (collect the tiles, stitch a
channel-first canvas, copy it to H×W×C, Pillow PNG level 1 with run-length) and as now (paste each
tile into the one output, the service's PNG writer). CPU seconds per stage (``time.process_time``,
medians of ``--repeats``), so a busy machine slows them less than it slows wall time.

The issue's target is client-side wall time outside the model over the model's time. The model runs
on ``torch.get_num_threads()`` threads and the rest on one, so on an otherwise idle machine that ratio
is about ``outside CPU / (forward CPU / threads)``; this estimate leaves out Ray's hops and storage.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image

from bench.machine import table
from bench.service import jpeg_of
from deployments.flow import inspection
from deployments.upscaler.encode import encode
from models.engine import TileEngine, keep_large_allocations, split_planes, upscaled_like
from models.precision import served_engine
from models.tiling import DEFAULT_TILE_SIZE, Tile, stitch

MAX_PIXELS = 50_000_000


def cpu(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.process_time()
    result = fn()
    return time.process_time() - started, result


def before(tiles: list[tuple[Tile, torch.Tensor]], scale: int, height: int, width: int) -> bytes:
    canvas = stitch([o for _, o in tiles], [t for t, _ in tiles], scale, height, width)
    pixels = np.ascontiguousarray(canvas.permute(1, 2, 0).numpy())
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", compress_level=1, compress_type=zlib.Z_RLE)
    return buffer.getvalue()


def after(tiles: list[tuple[Tile, torch.Tensor]], image: np.ndarray, scale: int) -> bytes:
    out, (sink,) = upscaled_like(image, scale)
    for tile, output in tiles:
        sink.put(output, tile, scale)
    return encode(out, "png", 1).data


def one_run(engine: TileEngine, data: bytes) -> dict[str, float]:
    probe = inspection.inspect(data, MAX_PIXELS)
    decode_s, decoded = cpu(lambda: inspection.decode(probe, MAX_PIXELS))
    (plane,) = split_planes(decoded.pixels)
    forward_s, tiles = cpu(lambda: list(engine.upscale_tiles(plane, DEFAULT_TILE_SIZE, max_batch=1)))
    height, width = decoded.pixels.shape[:2]
    before_s, _ = cpu(lambda: before(tiles, engine.scale, height, width))
    after_s, _ = cpu(lambda: after(tiles, decoded.pixels, engine.scale))
    return {"decode": decode_s, "forward": forward_s, "before": before_s, "after": after_s}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    keep_large_allocations()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    threads = torch.get_num_threads()
    data = jpeg_of(1920, 1080, "astronaut.png")
    rows = []
    for name in ("vcsr-m-x2", "vcsr-m-x4"):
        engine = served_engine(name, torch.device("cpu"))
        runs = [one_run(engine, data) for _ in range(args.repeats)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        model_s = med["forward"] / threads
        for label in ("before", "after"):
            outside = med["decode"] + med[label]
            rows.append({
                "model": name, "code": label, "forward CPU s": med["forward"], "decode CPU s": med["decode"],
                "assemble+encode CPU s": med[label], "outside / model (est.)": f"{outside / model_s:.1%}",
            })  # fmt: skip
    columns = ["model", "code", "forward CPU s", "decode CPU s", "assemble+encode CPU s", "outside / model (est.)"]
    print(f"{threads} threads for the forward pass\n" + table(rows, columns))


if __name__ == "__main__":
    main()
