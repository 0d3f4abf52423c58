"""Engine throughput against the machine's own limit.

    python -m bench.engine [--models vcsr-m-x2 vcsr-m-x4] [--batches 1 2 4] [--tile 256 512] [--json F]

For each bundled model, each precision worth running on the device (fp32, bf16/fp16 where the hardware
has them, and int8 on a CPU where the model has an int8 build), each tile size and each micro-batch
size, it times ``run`` on uint8 tiles — the exact call a Serve batch makes — and reports megapixels of
input per second, achieved GFLOP/s (convolution and matmul FLOPs counted by ``torch.utils.flop_counter``
on the fp32 network; int8 does the same arithmetic) and that as a share of the peak of the same dtype
on the same device, measured in the same run: the faster of a large matmul and a large 3×3
convolution (the op these networks are made of); for int8, an int8 3×3 convolution run by OpenVINO
(``bench.int8_peak``). ``served`` marks the precision the service's rule picks.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from bench.int8_peak import int8_peak_gflops
from bench.machine import describe, header, table, write_json
from models.conditioning import bind
from models.engine import Engine, TileEngine, keep_large_allocations, resolve_device
from models.int8 import Int8Engine, artefact_matches, artefact_path
from models.loader import load_model
from models.precision import DTYPES, INT8, candidates, choose_precision, recorded_losses
from models.registry import resolve
from models.tiling import DEFAULT_TILE_SIZE


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so a clock read after it covers that work."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], seconds: float, device: torch.device, min_runs: int = 3) -> float:
    """Seconds per call, best of repeated runs after a warm-up (the steady state a busy replica sees)."""
    fn()
    sync(device)
    best, spent, runs = float("inf"), 0.0, 0
    while spent < seconds or runs < min_runs:
        started = time.perf_counter()
        fn()
        sync(device)
        elapsed = time.perf_counter() - started
        best, spent, runs = min(best, elapsed), spent + elapsed, runs + 1
    return best


def sustained(fn: Callable[[], object], seconds: float, device: torch.device) -> tuple[int, float]:
    """Calls made back to back for ``seconds`` after a warm-up, and the time they took: a rate over a
    window, as a service's throughput is measured (not the best single call)."""
    fn()
    sync(device)
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        fn()
        sync(device)
        calls += 1
    return calls, time.perf_counter() - started


def peak_gflops(dtype: torch.dtype, device: torch.device, seconds: float) -> dict[str, float]:
    """Dense peaks of this dtype measured here: the best of square matmuls and of large 3×3
    convolutions (channels_last, as the engine runs them), each over a few sizes."""
    gpu = device.type == "cuda"
    matmul = 0.0
    for n in (4096, 8192) if gpu else (1024, 2048, 4096):
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        matmul = max(matmul, 2 * n**3 / timed(partial(torch.mm, a, b), seconds / 3, device))
    conv = 0.0
    for batch, channels, side in ((32, 64, 256), (16, 128, 256)) if gpu else ((4, 64, 128), (2, 128, 128)):
        x = torch.randn(batch, channels, side, side, device=device).to(dtype)
        x = x.contiguous(memory_format=torch.channels_last)
        w = torch.randn(channels, channels, 3, 3, device=device).to(dtype)
        w = w.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            per_call = timed(partial(F.conv2d, x, w, padding=1), seconds / 2, device)
        conv = max(conv, 2 * batch * channels * channels * 9 * side * side / per_call)
    return {"matmul": matmul / 1e9, "conv3x3": conv / 1e9, "peak": max(matmul, conv) / 1e9}


def count_flops(engine: TileEngine, tiles: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter:
        engine.run(tiles)
    return int(counter.get_total_flops())


def on_thread(worker: ThreadPoolExecutor | None, fn: Callable[[], object]) -> Callable[[], object]:
    """``fn``, or a call that runs ``fn`` on ``worker`` and waits for it."""
    if worker is None:
        return fn
    return lambda: worker.submit(fn).result()


def precisions(name: str, device: torch.device) -> list[str]:
    """fp32, the reduced PyTorch precisions worth trying here, and int8 where the model has a build."""
    spec = resolve(name)
    info = load_model(spec.path, name).info
    int8 = [INT8] if device.type == "cpu" and artefact_matches(artefact_path(spec.path), spec.path) else []
    return ["fp32", *candidates(device, info), *int8]


def engine_in(name: str, precision: str, device: torch.device) -> TileEngine:
    """``name`` in ``precision``; a degradation-aware model told "clean" (any values cost the same)."""
    spec = resolve(name)
    loaded = load_model(spec.path, name)
    if precision == INT8:
        return bind(Int8Engine(artefact_path(spec.path), loaded.info), {})
    return bind(Engine(loaded.module, loaded.info, device, DTYPES[precision]), {})


def bench_model(
    name: str,
    device: torch.device,
    batches: list[int],
    tiles: list[int],
    seconds: float,
    peaks: dict[str, dict[str, float]],
    worker: ThreadPoolExecutor | None = None,
    rounds: int = 1,
) -> list[dict[str, Any]]:
    """One row per precision, tile size and batch size; with ``worker``, every timed call runs on that
    thread (as the upscaler replica runs its forward passes), not on the main one. With ``rounds`` > 1
    the precisions take turns that many times and each keeps its best time: on a shared machine the
    ratios then compare moments of the same load instead of whatever load each one met."""
    spec = resolve(name)
    info = load_model(spec.path, name).info
    ready = artefact_matches(artefact_path(spec.path), spec.path)
    served = choose_precision(device, info, "auto", recorded_losses(spec.path), ready)
    reference = engine_in(name, "fp32", device)
    engines = {p: engine_in(name, p, device) for p in precisions(name, device)}
    best: dict[tuple[str, int, int], float] = {}
    for _ in range(rounds):
        for precision, engine in engines.items():
            for tile in tiles:
                for batch in batches:
                    batch_tiles = torch.randint(0, 256, (batch, 3, tile, tile), dtype=torch.uint8)
                    per_call = timed(on_thread(worker, partial(engine.run, batch_tiles)), seconds, device)
                    key = (precision, tile, batch)
                    best[key] = min(best.get(key, float("inf")), per_call)
    rows = []
    for (precision, tile, batch), per_call in best.items():
        flops = count_flops(reference, torch.zeros(batch, 3, tile, tile, dtype=torch.uint8))
        rows.append(_row(name, precision, precision == served, batch, tile, per_call, flops, peaks))
        print(table(rows[-1:], list(rows[-1])).splitlines()[-1], flush=True)
    return rows


def _row(
    name: str,
    precision: str,
    served: bool,
    batch: int,
    tile: int,
    per_call: float,
    flops: int,
    peaks: dict[str, dict[str, float]],
) -> dict[str, Any]:
    gflops = flops / per_call / 1e9
    return {
        "model": name,
        "dtype": precision,
        "default": served,
        "batch": batch,
        "tile": tile,
        "ms_per_batch": per_call * 1e3,
        "mp_per_s": batch * tile * tile / per_call / 1e6,
        "gflop_per_s": gflops,
        "peak_gflop_per_s": peaks[precision]["peak"],
        "of_peak": gflops / peaks[precision]["peak"],
    }


def by_tile(rows: list[dict[str, Any]], model: str) -> dict[int, dict[str, float]]:
    """Per tile size, the best MP/s of each precision (over batch sizes) and each one's speed-up over
    fp32: the ratios to compare, since all come from one run on one (shared) machine."""
    out: dict[int, dict[str, float]] = {}
    for r in rows:
        if r["model"] == model:
            cell = out.setdefault(r["tile"], {})
            cell[r["dtype"]] = max(cell.get(r["dtype"], 0.0), r["mp_per_s"])
    for cell in out.values():
        for dtype in list(cell):
            cell[f"{dtype}_over_fp32"] = cell[dtype] / cell["fp32"]
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["vcsr-m-x2", "vcsr-m-x4"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 2, 4])
    parser.add_argument(
        "--tile", type=int, nargs="+", default=[DEFAULT_TILE_SIZE], help="input tile sides (default: the service's)"
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement (after a warm-up)")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--worker-thread",
        action="store_true",
        help="run the timed calls on a worker thread, as the replica does (see MALLOC_ARENA_MAX)",
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: every core, as the upscaler replica)")
    parser.add_argument("--rounds", type=int, default=1, help="turns each precision takes (best time kept)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    keep_large_allocations()  # as the upscaler replica does
    torch.set_num_threads(args.threads or len(os.sched_getaffinity(0)))
    info = describe()
    print(header(info), f"\ndevice: {device}, torch threads {torch.get_num_threads()}", flush=True)
    dtypes = sorted({d for m in args.models for d in precisions(m, device)})
    peaks: dict[str, dict[str, float]] = {}
    for _ in range(args.rounds):  # taking turns, as the engines do: each dtype's best moment
        for d in dtypes:
            got = (
                int8_peak_gflops(torch.get_num_threads(), args.seconds)
                if d == INT8
                else peak_gflops(DTYPES[d], device, args.seconds)
            )
            peaks[d] = {k: max(v, peaks.get(d, {}).get(k, 0.0)) for k, v in got.items()}
    print(table([{"dtype": d, **p} for d, p in peaks.items()], ["dtype", "matmul", "conv3x3", "peak"]), flush=True)
    worker = ThreadPoolExecutor(1) if args.worker_thread else None
    rows = [
        r
        for m in args.models
        for r in bench_model(m, device, args.batches, args.tile, args.seconds, peaks, worker, args.rounds)
    ]
    columns = list(rows[0])
    print("\n" + table(rows, columns))
    best = {}
    for m in args.models:
        ours = [r for r in rows if r["model"] == m and r["default"]]
        top = max(ours, key=lambda r: r["mp_per_s"])
        best[m] = {k: top[k] for k in ("dtype", "batch", "mp_per_s", "gflop_per_s", "of_peak")}
        best[m]["by_tile"] = by_tile(rows, m)
        print(
            f"{m}: best {top['mp_per_s']:.3f} MP/s in {top['dtype']} (batch {top['batch']}), "
            f"{top['of_peak']:.0%} of the measured {top['dtype']} peak"
        )
        for tile, cell in best[m]["by_tile"].items():
            ratios = ", ".join(f"{d} {cell[d]:.2f} MP/s ({cell[d + '_over_fp32']:.2f}×)" for d in cell if "_" not in d)
            print(f"  {tile}² tiles, best batch: {ratios} (× fp32)")
    report = {
        "machine": info,
        "device": str(device),
        "settings": vars(args) | {"json": str(args.json)},
        "peaks_gflop_per_s": peaks,
        "rows": rows,
        "best": best,
    }
    write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
