"""Peak memory of upscaling: one large image in-process, or the upscaler replica of the real service.

    python -m bench.peak_memory [--size 4000] [--model vcsr-m-x2] [--tile 512] [--untiled]
    python -m bench.peak_memory --service [--service-width 1632 --service-height 1224] [--concurrent 1 8]

In-process: each measurement runs in a fresh child process and reports its peak resident set size
(ru_maxrss) after loading the model, and after upscaling: the difference is what one image costs. For
contrast it also runs the same image untiled, where the whole feature map of the network is alive at once.

``--service`` starts the service at ×4 (``UPSCALE_SCALE=4``, ``serve run serve_config.yaml``, local
storage), warms it with one small upload, then for each count in ``--concurrent`` resets the upscaler
replica's peak RSS (``/proc/PID/clear_refs``), sends that many 2-MP JPEG uploads at once and reads its
``VmHWM``: the replica's peak for one and for eight concurrent 2 MP ×4 requests.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import time
from pathlib import Path

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


def _status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def measure_service(width: int, height: int, counts: list[int]) -> list[dict[str, object]]:
    """The upscaler replica's idle RSS and peak RSS while ``count`` uploads of ``width×height`` run at once."""
    import asyncio

    import httpx

    from bench.service import Service, _send, upload_of

    item = upload_of(f"{width}x{height}", width, height)
    warm = upload_of("warm-up", 64, 48)
    rows: list[dict[str, object]] = []
    with Service({"UPSCALE_SCALE": "4"}) as service:
        (pid,) = service.pids(r"ServeReplica:[^:]+:Upscaler")

        async def burst(n: int, upload: object) -> list[int]:
            async with httpx.AsyncClient(base_url=service.url, timeout=900) as client:
                samples = await asyncio.gather(*(_send(client, upload) for _ in range(n)))  # type: ignore[arg-type]
            return [s.status for s in samples if s.folder == "upscaled"]

        asyncio.run(burst(1, warm))
        for count in counts:
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
            idle = _status_mib(pid, "VmRSS")
            started = time.perf_counter()
            upscaled = asyncio.run(burst(count, item))
            rows.append(
                {
                    "concurrent": count,
                    "upscaled": len(upscaled),
                    "idle_rss_mib": round(idle),
                    "peak_rss_mib": round(_status_mib(pid, "VmHWM")),
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=4000)
    parser.add_argument("--model", default=default_model_name(2))
    parser.add_argument("--tile", type=int, default=DEFAULT_TILE_SIZE)
    parser.add_argument("--untiled", action="store_true", help="also measure without tiling (needs much memory)")
    parser.add_argument("--service", action="store_true", help="the upscaler replica of the real service at ×4")
    parser.add_argument("--service-width", type=int, default=1632)
    parser.add_argument("--service-height", type=int, default=1224)
    parser.add_argument("--concurrent", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    if args.service:
        measure_service(args.service_width, args.service_height, args.concurrent)
        return
    print(f"{platform.processor() or platform.machine()}, {mp.cpu_count()} CPUs; {args.model}, {args.size}² input")
    runs = [measure(args.model, args.size, args.tile)]
    if args.untiled:
        runs.append(measure(args.model, args.size, None))
    for r in runs:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
