"""The whole service under load, against the engine's own throughput measured in the same run.

    python -m bench.pipeline [--seconds 30] [--clients 1 2 4 8] [--loads 0.3 0.5 0.7 0.9 1.1] [--s3]
                             [--json docs/bench/pipeline.json] [--plot docs/bench/pipeline.png]
                             [--config serve_config.yaml] [--saturation-only]
                             [--user-config KEY=VALUE …] [--app-env KEY=VALUE …]

1. engine: the default model at its served precision on tiles of the service's size, back to back for
   20 s (its rate over the window, as the pipeline's is measured);
2. starts the real service (``ray start`` + ``python -m serve_app serve``, local storage);
3. upscaling path at saturation: clients sending only small and 1080p JPEGs; its input MP/s over the
   engine's is the pipeline/engine ratio;
4. the fixed mix (small and 1080p uploads that get upscaled, 4K uploads that don't) with 1…8 closed-loop
   clients: uploads/s, MP/s, p50/p95/p99 per kind, tiles per batch and per forward pass (Ray metrics);
5. open loop at fractions of the mix's saturation rate: throughput and p99 against offered load (plot);
6. no-upscale path: 4K JPEGs only, local storage, and with ``--s3`` again on moto's S3 server.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import shutil
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch
import yaml

from bench.engine import sustained, timed
from bench.machine import describe, header, table, write_json
from bench.service import (
    REPO,
    Sample,
    Service,
    Upload,
    closed_loop,
    cores_used,
    cpu_seconds,
    open_loop,
    send_once,
    summarise,
    upload_of,
)
from configs.settings import load_settings
from models.engine import keep_large_allocations, resolve_device
from models.precision import served_engine
from models.registry import default_model_name
from models.tiling import DEFAULT_TILE_SIZE

COUNTERS = (
    "ray_upscaler_tiles_total",
    "ray_upscaler_batches_total",
    "ray_upscaler_forward_passes_total",
    "ray_upscaler_forward_seconds_total",
    "ray_upscaler_tile_megapixels_total",
)


def mixes() -> dict[str, list[Upload]]:
    small = upload_of("small-640x480", 640, 480, "coffee.png")
    tiny = upload_of("small-320x240", 320, 240, "chelsea.png")
    hd = upload_of("1080p", 1920, 1080, "astronaut.png")
    uhd = upload_of("4k", 3840, 2160, "motorcycle_left.png")
    return {
        "upscale": [small, hd, tiny, small],
        "mix": [small, uhd, hd, tiny, uhd, small],
        "4k": [uhd],
    }


def run_phase(
    service: Service, name: str, samples_fn: Any, counters: bool = True
) -> tuple[dict[str, Any], list[Sample]]:
    before = service.settled_metrics(0) if counters else {}  # the service is idle and its counters settled
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    samples: list[Sample] = asyncio.run(samples_fn)
    elapsed = time.perf_counter() - started  # first upload sent → last answer received
    result = {
        "phase": name,
        **summarise(samples, elapsed),
        "cores_used": cores_used(cpu_before, cpu_seconds(), elapsed),
    }
    if counters:
        # Counters move only while uploads run, so the difference of two idle readings is exact.
        after = service.settled_metrics()
        tiles, batches, passes, forward_s, tile_mp = (after.get(k, 0.0) - before.get(k, 0.0) for k in COUNTERS)
        result["tiles_per_batch"] = tiles / batches if batches else None
        result["tiles_per_forward_pass"] = tiles / passes if passes else None
        result["forward_passes"] = passes
        result["forward_busy"] = forward_s / elapsed  # share of the wall time the model was running
        result["forward_mp_per_s"] = tile_mp / forward_s if forward_s else None  # its speed while running
        upscaled = sum(s.megapixels for s in samples if s.folder == "upscaled")
        result["computed_over_input"] = tile_mp / upscaled if upscaled else None  # tile overlap
    print(
        f"{name}: {result['uploads_per_s']:.2f} uploads/s, {result['upscaled_mp_per_s']:.3f} MP/s upscaled, "
        f"p50 {result['p50_s']:.2f} s, p99 {result['p99_s']:.2f} s, errors {result['errors']}",
        flush=True,
    )
    return result, samples


def engine_figure(seconds: float) -> dict[str, Any]:
    """The engine at saturation: the default model at its served precision on one tile of the service's
    size, run back to back for ``seconds``; its rate over that window, as the pipeline's is measured.
    The best single call (what ``bench.engine`` reports against the peak) is kept beside it."""
    settings = load_settings()
    name = settings.model_name or default_model_name(settings.scales[0])
    device = resolve_device(settings.device)
    engine = served_engine(name, device, settings.precision)
    tile = torch.randint(0, 256, (1, 3, DEFAULT_TILE_SIZE, DEFAULT_TILE_SIZE), dtype=torch.uint8)
    calls, elapsed = sustained(partial(engine.run, tile), seconds, device)
    best = timed(partial(engine.run, tile), 3.0, device)
    return {
        "model": name,
        "dtype": str(engine.dtype).removeprefix("torch."),
        "batch": 1,
        "tile": DEFAULT_TILE_SIZE,
        "seconds": elapsed,
        "mp_per_s": calls * DEFAULT_TILE_SIZE**2 / elapsed / 1e6,
        "best_mp_per_s": DEFAULT_TILE_SIZE**2 / best / 1e6,
    }


def variant(user_config: list[str], app_env: list[str], base: Path = REPO / "serve_config.yaml") -> Path | None:
    """A copy of the Serve config ``base`` with the Upscaler's user_config and the app's environment
    overridden (``KEY=VALUE``, values read as YAML), for A/B runs; None when nothing is overridden."""
    if not user_config and not app_env:
        return None
    document = yaml.safe_load(base.read_text())
    (app,) = document["applications"]
    upscaler = next(d for d in app["deployments"] if d["name"] == "Upscaler")
    upscaler["user_config"].update({k: yaml.safe_load(v) for k, v in (pair.split("=", 1) for pair in user_config)})
    env_vars = app.setdefault("runtime_env", {}).setdefault("env_vars", {})
    env_vars.update(pair.split("=", 1) for pair in app_env)
    path = Path(tempfile.mkdtemp(prefix="vcs-variant-")) / "serve_config.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    print(f"variant config {path}: user_config {upscaler['user_config']}, env {env_vars}", flush=True)
    return path


def plot(points: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    offered = [p["offered_per_s"] for p in points]
    fig, left = plt.subplots(figsize=(7, 4.2))
    left.plot(offered, [p["uploads_per_s"] for p in points], "o-", color="tab:blue", label="throughput")
    left.plot(offered, offered, ":", color="grey", label="offered = served")
    left.set_xlabel("offered load (uploads/s, fixed mix)")
    left.set_ylabel("served uploads/s", color="tab:blue")
    right = left.twinx()
    for kind, style in (("1080p", "s--"), ("small-640x480", "^--"), ("4k", "d--")):
        right.plot(offered, [p["by_kind"].get(kind, {}).get("p99_s") for p in points], style, label=f"p99 {kind}")
    right.set_ylabel("p99 latency (s)")
    right.set_yscale("log")
    lines = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = left.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    left.legend(lines, labels, loc="upper left", fontsize=8)
    left.set_title("VisionCloud Upscaler: throughput and p99 against offered load")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each load phase")
    parser.add_argument("--engine-seconds", type=float, default=20.0, help="length of the engine's window")
    parser.add_argument("--clients", nargs="+", type=int, default=[1, 2, 4, 8])
    parser.add_argument("--loads", nargs="+", type=float, default=[0.3, 0.5, 0.7, 0.9, 1.1])
    parser.add_argument("--s3", action="store_true", help="also run the no-upscale path against moto's S3 server")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--config", type=Path, default=REPO / "serve_config.yaml", help="the Serve config to run")
    parser.add_argument("--saturation-only", action="store_true", help="stop after the upscale-only phase (A/B runs)")
    parser.add_argument(
        "--user-config",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="override the Upscaler's user_config, e.g. tile_size=512 max_batch_pixels=262144",
    )
    parser.add_argument(
        "--app-env",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="override the app's runtime_env env_vars, e.g. MALLOC_ARENA_MAX=0",
    )
    args = parser.parse_args(argv)

    info = describe()
    print(header(info), flush=True)
    keep_large_allocations()  # as the upscaler replica does
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    engine = engine_figure(args.engine_seconds)
    print(
        f"engine: {engine['model']} {engine['dtype']} on {engine['tile']}² tiles: {engine['mp_per_s']:.3f} MP/s "
        f"over {engine['seconds']:.0f} s (best single call {engine['best_mp_per_s']:.3f})"
    )
    torch.set_num_threads(1)  # the client side must not compete with the service for the cores
    work = mixes()
    report: dict[str, Any] = {
        "machine": info,
        "settings": vars(args) | {"json": str(args.json), "plot": str(args.plot), "config": str(args.config)},
    }
    report["engine"] = engine
    config = variant(args.user_config, args.app_env, args.config)
    if config is not None:
        atexit.register(shutil.rmtree, config.parent, True)
    with Service(config=config or args.config) as service:
        asyncio.run(send_once(service.url, list({u.label: u for m in work.values() for u in m}.values())))
        service.settled_metrics()  # the warm-up's counters reach the endpoint before the first phase reads it
        saturated, _ = run_phase(
            service,
            "upscale-only",
            closed_loop(service.url, work["upscale"], max(args.clients), args.seconds),
        )
        report["upscale_saturation"] = saturated
        report["pipeline_over_engine"] = saturated["upscaled_mp_per_s"] / engine["mp_per_s"]
        print(
            f"pipeline / engine = {report['pipeline_over_engine']:.3f}; forward thread busy "
            f"{saturated['forward_busy']:.1%} at {saturated['forward_mp_per_s']:.3f} MP/s, "
            f"{saturated['computed_over_input']:.3f}× the input pixels computed; cores used: "
            + ", ".join(f"{role} {cores:.2f}" for role, cores in saturated["cores_used"].items()),
            flush=True,
        )
        if args.saturation_only:
            write_json(args.json, report)
            return report
        closed = []
        for n in args.clients:
            result, _ = run_phase(service, f"mix x{n}", closed_loop(service.url, work["mix"], n, args.seconds))
            closed.append({"clients": n, **result})
        report["closed_loop"] = closed
        saturation = max(r["uploads_per_s"] for r in closed)
        report["saturation_uploads_per_s"] = saturation
        points = []
        for fraction in args.loads:
            rate = fraction * saturation
            result, _ = run_phase(
                service, f"open {fraction:.0%}", open_loop(service.url, work["mix"], rate, args.seconds)
            )
            points.append({"fraction": fraction, "offered_per_s": rate, **result})
        report["open_loop"] = points
        report["no_upscale_local"], _ = run_phase(
            service, "4k local", closed_loop(service.url, work["4k"], 16, args.seconds), counters=False
        )
    if args.s3:
        from bench.s3servers import moto_server

        credentials = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}
        os.environ.update(credentials)  # moto accepts any; the bucket is made from this process
        with moto_server("vcs-bench") as s3:
            env = {"S3_BUCKET": s3.bucket, "S3_ENDPOINT_URL": s3.endpoint, **credentials}
            with Service(env) as service:
                asyncio.run(send_once(service.url, work["4k"]))
                report["no_upscale_s3"], _ = run_phase(
                    service, "4k s3 (moto)", closed_loop(service.url, work["4k"], 16, args.seconds),
                    counters=False,
                )  # fmt: skip

    at70 = min(points, key=lambda p: abs(p["fraction"] - 0.7))
    tail = {k: v["p99_s"] / v["p50_s"] for k, v in at70["by_kind"].items()}
    report["targets"] = {
        "pipeline_over_engine (≥ 0.9)": report["pipeline_over_engine"],
        "no_upscale_4k_local_uploads_per_s (≥ 50)": report["no_upscale_local"]["uploads_per_s"],
        "p99_over_p50_at_70pct (≤ 3, per kind)": tail,
        "throughput_8_over_1_clients (≥ 1)": closed[-1]["uploads_per_s"] / closed[0]["uploads_per_s"],
    }
    if "no_upscale_s3" in report:
        report["targets"]["no_upscale_4k_s3_uploads_per_s (reported)"] = report["no_upscale_s3"]["uploads_per_s"]
    print()
    print(table(closed, ["clients", "uploads_per_s", "upscaled_mp_per_s", "p50_s", "p95_s", "p99_s",
                         "tiles_per_batch", "tiles_per_forward_pass", "errors"]))  # fmt: skip
    print()
    print(table(points, ["fraction", "offered_per_s", "uploads_per_s", "p50_s", "p99_s", "errors"]))
    print()
    per_kind = [{"kind": k, **v} for k, v in at70["by_kind"].items()]
    print(f"at {at70['fraction']:.0%} of saturation, per kind:")
    print(table(per_kind, ["kind", "uploads", "p50_s", "p95_s", "p99_s"]))
    print()
    for k, v in report["targets"].items():
        print(f"{k}: {v if isinstance(v, dict) else round(v, 3)}")
    write_json(args.json, report)
    if args.plot:
        plot(points, args.plot)
    return report


if __name__ == "__main__":
    main()
