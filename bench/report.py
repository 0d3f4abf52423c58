"""Render the tables of docs/benchmarks.md from the benchmark scripts' JSON files.

    python -m bench.report [--dir docs/bench]     # prints Markdown; paste or redirect

Every figure in docs/benchmarks.md comes from one of these files, so a re-run
(``python -m bench.engine --json docs/bench/engine.json`` etc.) regenerates them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def md(rows: list[dict[str, Any]], columns: dict[str, str]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, bool):
            return "yes" if v else ""
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(k)) for k in columns) + " |" for r in rows]
    return "\n".join(lines)


def machine(report: dict[str, Any]) -> str:
    m = report["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    return f"{m['cpu']}, {m['cores']} cores, GPU {m['gpu'] or 'none'}; Python {m['python']}, {versions}"


def engine(report: dict[str, Any]) -> str:
    peaks = [{"dtype": d, **p} for d, p in report["peaks_gflop_per_s"].items()]
    rows = [{**r, "of_peak": f"{r['of_peak']:.0%}"} for r in report["rows"]]
    return "\n\n".join([
        f"Machine: {machine(report)}.",
        "Peak of each dtype measured in the same run (GFLOP/s):\n\n"
        + md(peaks, {"dtype": "dtype", "matmul": "matmul", "conv3x3": "3×3 conv", "peak": "peak (the limit)"}),
        md(rows, {"model": "model", "dtype": "dtype", "default": "served", "batch": "tiles / batch", "tile": "tile",
                  "ms_per_batch": "ms / batch", "mp_per_s": "MP/s (input)", "gflop_per_s": "GFLOP/s",
                  "of_peak": "of peak"}),
    ])  # fmt: skip


def pipeline(report: dict[str, Any]) -> str:
    e, sat = report["engine"], report["upscale_saturation"]
    closed = report["closed_loop"]
    points = report["open_loop"]
    at70 = min(points, key=lambda p: abs(p["fraction"] - 0.7))
    kinds = [{"kind": k, **v, "ratio": v["p99_s"] / v["p50_s"]} for k, v in at70["by_kind"].items()]
    parts = [
        f"Machine: {machine(report)}.",
        f"Engine in the same run: {e['model']} {e['dtype']}, {e['batch']} tile(s) of {e['tile']}² back to back "
        f"for {e['seconds']:.0f} s: **{e['mp_per_s']:.3f} MP/s** (best single call {e['best_mp_per_s']:.3f}). "
        f"Upscaling path at saturation ({max(c['clients'] for c in closed)} "
        f"clients, small + 1080p only): **{sat['upscaled_mp_per_s']:.3f} MP/s**, "
        f"{sat['uploads_per_s']:.2f} uploads/s, {sat['tiles_per_batch']:.2f} tiles per batch → "
        f"**pipeline / engine = {report['pipeline_over_engine']:.2f}**.",
        where_the_cores_went(report),
        "Fixed mix (640×480, 4K, 1080p, 320×240, 4K, 640×480 JPEGs, in turn), closed loop:\n\n"
        + md(closed, {"clients": "clients", "uploads_per_s": "uploads/s", "upscaled_mp_per_s": "MP/s upscaled",
                      "p50_s": "p50 s", "p95_s": "p95 s", "p99_s": "p99 s", "tiles_per_batch": "tiles / batch",
                      "tiles_per_forward_pass": "tiles / forward pass", "errors": "errors"}),
        f"Open loop (uploads started at a fixed rate, a fraction of the mix's saturation "
        f"{report['saturation_uploads_per_s']:.2f} uploads/s):\n\n"
        + md(points, {"fraction": "fraction", "offered_per_s": "offered /s", "uploads_per_s": "served /s",
                      "p50_s": "p50 s (all)", "p99_s": "p99 s (all)", "errors": "errors"}),
        f"Per kind at {at70['fraction']:.0%} of saturation:\n\n"
        + md(kinds, {"kind": "kind", "uploads": "uploads", "p50_s": "p50 s", "p95_s": "p95 s", "p99_s": "p99 s",
                     "ratio": "p99 / p50"}),
    ]  # fmt: skip
    nu = [{"storage": "local folder", **report["no_upscale_local"]}]
    if "no_upscale_s3" in report:
        nu.append({"storage": "S3 (moto server on 127.0.0.1)", **report["no_upscale_s3"]})
    parts.append(
        "No-upscale path, 4K JPEGs only, 16 clients:\n\n"
        + md(nu, {"storage": "storage", "uploads_per_s": "uploads/s", "p50_s": "p50 s", "p99_s": "p99 s",
                  "errors": "errors"})
    )  # fmt: skip
    return "\n\n".join(parts)


def where_the_cores_went(report: dict[str, Any]) -> str:
    """The upscale-only phase seen from inside: the model's busy share and speed, and CPU by role."""
    sat, e = report["upscale_saturation"], report["engine"]
    cores = report["machine"]["cores"]
    rows = [{"role": role, "cores": used, "share": f"{used / cores:.1%}"} for role, used in sat["cores_used"].items()]
    return (
        f"Inside the service during that phase (its own counters): the forward thread was busy "
        f"{sat['forward_busy']:.1%} of the wall time and ran at {sat['forward_mp_per_s']:.3f} MP/s while busy "
        f"({sat['forward_mp_per_s'] / e['mp_per_s']:.2f} × the engine alone), on "
        f"{sat['computed_over_input']:.3f} × the input pixels (tile overlaps). CPU by process, in cores "
        f"(of {cores}):\n\n" + md(rows, {"role": "process", "cores": "cores", "share": "of the machine"})
    )


def ab(reports: list[dict[str, Any]]) -> str:
    """One row per ``bench.pipeline --saturation-only`` run: the shipped config and its variants."""
    rows = []
    for report in reports:
        settings, sat = report["settings"], report["upscale_saturation"]
        changed = [*settings.get("user_config", []), *settings.get("app_env", [])]
        rows.append({
            "variant": report.get("label") or ", ".join(f"`{c}`" for c in changed) or "as shipped",
            "engine": report["engine"]["mp_per_s"],
            "pipeline": sat["upscaled_mp_per_s"],
            "ratio": f"{report['pipeline_over_engine']:.2f}",
            "busy": f"{sat['forward_busy']:.0%}",
            "speed": sat["forward_mp_per_s"],
            "computed": sat["computed_over_input"],
        })  # fmt: skip
    return md(rows, {"variant": "variant", "engine": "engine MP/s", "pipeline": "pipeline MP/s",
                     "ratio": "pipeline / engine", "busy": "forward busy", "speed": "forward MP/s while busy",
                     "computed": "computed / input pixels"})  # fmt: skip


def original(report: dict[str, Any]) -> str:
    rows = [{**r, "ratio": f"{r['ratio']:.1f}×"} for r in report["rows"]]
    return f"Machine: {machine(report)}.\n\n" + md(
        rows,
        {"size": "upload", "service_uploads_per_s": "service uploads/s", "service_p50_s": "service p50 s",
         "original_uploads_per_s": "original uploads/s", "original_parallel": "original processes at once",
         "original_latency_s": "original s / image", "ratio": "service / original"},
    )  # fmt: skip


def encode(report: dict[str, Any]) -> str:
    return f"Machine: {machine(report)}.\n\n" + md(
        report["rows"],
        {"output": "output", "encoder": "encoder", "cpu ms": "CPU ms", "wall ms": "wall ms", "MB": "MB",
         "cpu / before": "CPU / before", "size / before": "size / before"},
    )  # fmt: skip


def client(report: dict[str, Any]) -> str:
    nu = report["no_upscale"]
    cpu = [{"role": role, "ms": ms} for role, ms in nu["cpu_ms_per_upload"].items()]
    parts = [
        f"Machine: {machine(report)}.",
        f"No-upscale path, 4K JPEGs, {nu['threads']} threads of Python `requests`: **{nu['uploads_per_s']:.1f} "
        f"uploads/s**, p50 {nu['p50_s']:.3f} s, p99 {nu['p99_s']:.3f} s, {nu['errors']} errors. CPU per upload "
        "by process:\n\n" + md(cpu, {"role": "process", "ms": "CPU ms / upload"}),
    ]
    if "upscale" in report:
        rows = [{**r, "ratio": f"{r['outside_over_model']:.1%}"} for r in report["upscale"]]
        parts.append(
            "1080p uploads one at a time (medians of the repeats):\n\n"
            + md(rows, {"model": "model", "output": "output", "client_s": "client s", "model_s": "model s",
                        "outside_s": "outside the model s", "ratio": "outside / model",
                        "tiling_s": "tiling and paste s", "encode_s": "encode s", "store_s": "store s"})
        )  # fmt: skip
    return "\n\n".join(parts)


def floor(report: dict[str, Any]) -> str:
    columns = {"round": "round", "variant": "variant", "workload": "workload", "per_s": "requests/s",
               "proxy": "proxy", "ingress": "ingress", "storage": "storage", "ray": "Ray's processes",
               "total": "all processes"}  # fmt: skip
    rows = [{"round": n, **row} for n, rows in enumerate(report["rounds"], 1) for row in rows]
    return f"Machine: {machine(report)}. CPU ms per request:\n\n" + md(rows, columns)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path("docs/bench"))
    args = parser.parse_args(argv)
    renderers = {"engine": engine, "engine-int8": engine, "pipeline": pipeline, "original": original,
                 "encode": encode, "client": client, "floor": floor}  # fmt: skip
    for name, render in renderers.items():
        path = args.dir / f"{name}.json"
        if path.is_file():
            print(f"<!-- {name}: generated by python -m bench.report from {path} -->\n")
            print(render(json.loads(path.read_text())) + "\n")
    runs = sorted((args.dir / "ab").glob("*.json"), key=lambda path: int(path.name.split("-")[0]))  # 1, 2, …, 10
    if runs:
        print(f"<!-- A/B: generated by python -m bench.report from {args.dir / 'ab'}/*.json -->\n")
        print(ab([json.loads(path.read_text()) for path in runs]) + "\n")


if __name__ == "__main__":
    main()
