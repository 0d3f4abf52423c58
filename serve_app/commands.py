"""The client subcommands: ``upload`` (files and folders → jobs → results) and ``status``.

The API key comes from ``$VISIONCLOUD_API_KEY`` (a key on the command line would show in ``ps``), the
service's URL from ``--url``, else ``$VISIONCLOUD_URL``, else the local default. These variables are the
client's, read here: the service's settings (``configs/settings.py``) are another program's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from configs import formats
from serve_app.client import ApiError, Client
from serve_app.progress import BarsView, QuietView, print_summary, summary
from serve_app.service_limits import ServiceLimits
from serve_app.upload import Entry, Options, Run, collect, digest

API_KEY_VARIABLE = "VISIONCLOUD_API_KEY"
URL_VARIABLE = "VISIONCLOUD_URL"
DEFAULT_URL = "http://127.0.0.1:8000"


def _url_option(parser: argparse.ArgumentParser) -> None:
    default = os.environ.get(URL_VARIABLE) or DEFAULT_URL
    parser.add_argument("--url", default=default, help=f"the service (default ${URL_VARIABLE}, else {DEFAULT_URL})")


def add_upload(commands: Any) -> None:
    send = commands.add_parser(
        "upload", help="upload images (files and folders) as jobs, download the results", description=UPLOAD_HELP
    )
    send.add_argument("paths", type=Path, nargs="+", metavar="PATH", help="image files and folders")
    _url_option(send)
    send.add_argument("-r", "--recursive", action="store_true", help="include images in subfolders")
    send.add_argument("-o", "--out", type=Path, help="write results to OUT/<folder>/ and resume from OUT")
    send.add_argument("--model", help="a model from `status` (default: the service's)")
    send.add_argument("--format", dest="fmt", choices=formats.output_names(), help="output format")
    send.add_argument("--batch", type=int, help="files per job (default and most: the service's MAX_JOB_IMAGES)")
    send.add_argument(
        "--batch-mb", type=float, help="megabytes per job request (default and most: the service's body limit)"
    )
    send.add_argument("--json", action="store_true", help="print one JSON document instead of progress bars")
    send.set_defaults(func=upload)


def add_status(commands: Any) -> None:
    status = commands.add_parser("status", help="print the service's health, models and statistics")
    _url_option(status)
    status.add_argument("--json", action="store_true", help="print one JSON document")
    status.set_defaults(func=show_status)


UPLOAD_HELP = (
    "Submit images as jobs and wait for them. With --out, results are written to OUT/good_quality/, "
    "OUT/upscaled/ and OUT/couldn't_upscale/, and running the same command again resumes (finished files "
    f"are skipped). The API key, if the service needs one, is read from ${API_KEY_VARIABLE}. "
    "Exit status: 0 all succeeded, 1 some failed, 2 the service could not be used."
)


def _client(url: str) -> Client:
    return Client(url, os.environ.get(API_KEY_VARIABLE) or None)


def upload(args: argparse.Namespace) -> int:
    err = Console(stderr=True)
    files, problems = collect(args.paths, args.recursive)
    for problem in problems:
        err.print(f"[red]{problem}[/red]", highlight=False)
    if not files:
        err.print("No images found." + ("" if args.recursive else " (Folders are read one level deep: --recursive.)"))
        return 2
    entries = [Entry(p, digest(p), p.stat().st_size) for p in files]
    started = time.monotonic()
    try:
        with _client(args.url) as client:
            options = _options(args, client.limits())
            if args.json:
                _run(Run(client, entries, options, QuietView()))
            else:
                with BarsView(Console(), len(entries)) as view:
                    client.on_wait = view.waiting
                    _run(Run(client, entries, options, view))
    except ApiError as exc:
        err.print(f"[red]The service refused: {exc}[/red] ({exc.code})", highlight=False)
        return 2
    except httpx.HTTPError as exc:
        err.print(f"[red]Cannot reach {args.url}: {exc}[/red]", highlight=False)
        return 2
    except KeyboardInterrupt:
        err.print("Stopped. Jobs already submitted keep running; run the same command again to resume.")
        return 130
    totals = summary(entries, time.monotonic() - started)
    if args.json:
        json.dump({"files": [e.as_json() for e in entries], "summary": totals}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_summary(Console(), entries, totals)
    return 1 if totals["failed"] or problems else 0


def _options(args: argparse.Namespace, limits: ServiceLimits) -> Options:
    """Batches within the service's limits (``--batch`` and ``--batch-mb`` may only lower them)."""
    files = min(limits.max_job_images, max(1, args.batch)) if args.batch else limits.max_job_images
    wanted = int(args.batch_mb * 1_000_000) if args.batch_mb else limits.job_bytes
    return Options(args.out, args.model, args.fmt, files, min(limits.job_bytes, wanted), limits.poll_interval_s)


def _run(run: Run) -> None:
    run.skip_finished()
    run.resume_jobs()
    run.submit_all()
    run.poll()
    run.manifest.save()


def show_status(args: argparse.Namespace) -> int:
    try:
        with _client(args.url) as client:
            healthy, health = client.health()
            models = client.models()
            stats = client.stats()
    except ApiError as exc:
        Console(stderr=True).print(f"[red]{args.url}: {exc}[/red] ({exc.code})", highlight=False)
        return 2
    except httpx.HTTPError as exc:
        Console(stderr=True).print(f"[red]Cannot reach {args.url}: {exc}[/red]", highlight=False)
        return 2
    if args.json:
        json.dump({"health": health, "models": models, "stats": stats}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_status(Console(), args.url, health, models, stats)
    return 0 if healthy else 1


def _print_status(console: Console, url: str, health: dict[str, Any], models: list[Any], stats: dict[str, Any]) -> None:
    colour = "green" if health.get("status") == "healthy" else "red"
    console.print(f"[bold]{url}[/bold]  [{colour}]{health.get('status')}[/{colour}]", highlight=False)
    for reason in health.get("reasons", []):
        console.print(f"  [red]{reason}[/red]", highlight=False)
    table = Table(title="Models", title_justify="left", show_edge=False)
    for column in ("name", "scale", "parameters", "PSNR-Y (dB)", ""):
        table.add_column(column, justify="right" if column in ("scale", "parameters") else "left")
    for m in models:
        psnr = " · ".join(f"{k} {v:.2f}" for k, v in m.get("psnr", {}).items())
        table.add_row(m["name"], f"×{m['scale']}", f"{m['parameters']:,}", psnr, "default" if m["default"] else "")
    console.print(table)
    console.print(stats_table(stats))


def stats_table(stats: dict[str, Any]) -> Table:
    def ms(value: float | None) -> str:
        return "–" if value is None else f"{value:.0f} ms"

    rate = stats["upscale"]["success_rate"]
    table = Table(title="Statistics", title_justify="left", show_header=False, show_edge=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for folder, n in stats["images_per_folder"].items():
        table.add_row(f"{folder}/", str(n))
    table.add_row("upscale success rate", "–" if rate is None else f"{rate:.1%}")
    table.add_row("processing p50 / p95", f"{ms(stats['processing_ms']['p50'])} / {ms(stats['processing_ms']['p95'])}")
    table.add_row("queue depth", "n/a" if stats["queue_depth"] is None else str(stats["queue_depth"]))
    table.add_row("spool depth", "n/a" if stats["spool_depth"] is None else str(stats["spool_depth"]))
    replicas = stats.get("replicas")
    table.add_row("replicas", "n/a" if not replicas else ", ".join(f"{k} {v}" for k, v in replicas.items()))
    return table
