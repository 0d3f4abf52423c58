"""Peak memory of upscaling one large image with tiling (the issue's 4000×4000 at ×2 case).

    python -m bench.peak_memory [--size 4000] [--model vcsr-m-x2] [--tile 512]

Each measurement runs in a fresh child process and reports its peak resident set size (ru_maxrss)
after loading the model, and after upscaling: the difference is what one image costs. For contrast it
also runs the same image untiled, where the whole feature map of the network is alive at once.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import time

from models.registry import default_model_name
from models.tiling import DEFAULT_TILE_SIZE


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run(model: str, size: int, tile: int | None, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    import numpy as np
    import torch

    from models.engine import Engine
    from models.loader import load_model
    from models.registry import resolve

    loaded = load_model(resolve(model).path)
    engine = Engine(loaded.module, loaded.info, torch.device("cpu"))
    image = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    before = _peak_mib()
    started = time.perf_counter()
    if tile is None:
        with torch.inference_mode():
            x = torch.from_numpy(image).permute(2, 0, 1)[None]
            engine.run(x)
    else:
        engine.upscale_image(image, tile=tile)
    queue.put(
        {
            "tile": tile,
            "baseline_mib": round(before),
            "peak_mib": round(_peak_mib()),
            "seconds": round(time.perf_counter() - started, 1),
        }
    )


def measure(model: str, size: int, tile: int | None) -> dict[str, object]:
    queue: mp.Queue = mp.get_context("spawn").Queue()  # type: ignore[type-arg]
    process = mp.get_context("spawn").Process(target=_run, args=(model, size, tile, queue))
    process.start()
    process.join()
    result: dict[str, object] = queue.get() if process.exitcode == 0 else {"tile": tile, "error": process.exitcode}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=4000)
    parser.add_argument("--model", default=default_model_name(2))
    parser.add_argument("--tile", type=int, default=DEFAULT_TILE_SIZE)
    parser.add_argument("--untiled", action="store_true", help="also measure without tiling (needs much memory)")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {mp.cpu_count()} CPUs; {args.model}, {args.size}² input")
    runs = [measure(args.model, args.size, args.tile)]
    if args.untiled:
        runs.append(measure(args.model, args.size, None))
    for r in runs:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
