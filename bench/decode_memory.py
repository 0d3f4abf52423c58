"""Peak memory of one ingress replica's flow under many large uploads at once, with decodes bounded
(MAX_CONCURRENT_DECODES) and unbounded — the issue's "20 parallel 49-MP PNG uploads".

    python -m bench.decode_memory [--uploads 20] [--side 7000] [--bounds 2 20] [--out docs/bench/decode_memory.json]

Each bound runs in a fresh child process: the real ``Flow`` over in-memory stand-ins for the upscaler and
storage (a 49-MP image scores as good quality, so each upload is fully decoded once to prove it intact
and stored as is). Reports the child's peak RSS (ru_maxrss) before and after, and the wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import multiprocessing as mp
import resource
import time
from pathlib import Path
from typing import Any


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Call:
    def __init__(self, fn: Any) -> None:
        self.remote = fn


class _Upscaler:
    def __init__(self) -> None:
        from deployments.contracts.values import ModelSummary

        summary = ModelSummary("m", "a", 2, 1, 1, "", True, False, False, {})

        async def models() -> list[Any]:
            return [summary]

        self.models = _Call(models)


class _Storage:
    def __init__(self) -> None:
        from deployments.contracts.values import StoredObject

        async def put(folder: Any, name: Any, digest: str, image: Any, made: Any) -> Any:
            return StoredObject(f"k/{digest[:16]}", "u", len(image.data), hashlib.sha256(image.data).hexdigest(), True)

        self.put = _Call(put)


def _png(side: int) -> bytes:
    import numpy as np
    from PIL import Image

    ramp = np.linspace(0, 255, side, dtype=np.uint8)
    pixels = np.stack([np.add.outer(ramp, ramp // 2), np.add.outer(ramp // 3, ramp), np.tile(ramp, (side, 1))], -1)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def _run(data: bytes, uploads: int, bound: int, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    from configs.settings import load_settings
    from deployments.flow.flow import Flow, Upload

    flow = Flow(_Upscaler(), _Storage(), load_settings(max_concurrent_decodes=bound))  # type: ignore[arg-type]
    before = _peak_mib()
    started = time.perf_counter()

    async def all_at_once() -> None:
        await asyncio.gather(*(flow.process(Upload(data, f"{i}.png", str(i))) for i in range(uploads)))

    asyncio.run(all_at_once())
    queue.put({"bound": bound, "peak_before_mib": round(before), "peak_mib": round(_peak_mib()),
               "seconds": round(time.perf_counter() - started, 2)})  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--side", type=int, default=7000)
    parser.add_argument("--bounds", type=int, nargs="+", default=[2, 20])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    data = _png(args.side)
    context = mp.get_context("spawn")
    results = []
    for bound in args.bounds:
        queue: mp.Queue = context.Queue()  # type: ignore[type-arg]
        child = context.Process(target=_run, args=(data, args.uploads, bound, queue))
        child.start()
        results.append(queue.get())
        child.join()
    report = {"uploads": args.uploads, "megapixels": args.side**2 / 1e6, "png_mib": round(len(data) / 2**20, 1),
              "runs": results}  # fmt: skip
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)  # a command's output


if __name__ == "__main__":
    main()
