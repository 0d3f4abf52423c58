"""What the Serve path itself costs per upload, black-box: CPU milliseconds per request of each process
for uploads that do no work beside crossing it, next to the 4K uploads of ``bench.client``.

    python -m bench.floor [--seconds 20] [--rounds 2] [--variant NAME:K=V,K=V …] [--json F]

Three workloads, 8 threads of Python ``requests`` each, against the service as a user starts it
(``bench.service.Service``):

- ``refused 1 kB`` and ``refused 1 MB``: a body that is not an image. The proxy and the ingress carry
  it and parse the multipart form, then the ingress answers 415 from the magic bytes: no decode, no
  storage. The difference between the two is the cost of the body's bytes; the 1 kB row is the cost of
  a request.
- ``4K stored``: the no-upscale upload of ``bench.client`` (a 0.98 MB 4K JPEG stored as uploaded).

``--variant`` adds a service started with extra environment variables (Ray's ``RAY_<system config>``
or Serve's ``RAY_SERVE_*``: they reach every Ray process through ``ray start``); variants run one after
another, ``--rounds`` times, so each round compares them under the same machine weather.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from bench.client import hammer, stored_as_uploaded
from bench.machine import describe, header, table, write_json
from bench.service import Service, jpeg_of

PROCESSES = {
    "proxy": "HTTP proxy",
    "ingress": "Ingress replica",
    "storage": "Storage replica",
    "ray": "Ray control plane (GCS, raylet, agents)",
}


def refused(response: requests.Response) -> bool:
    return response.status_code == 415


def workloads() -> dict[str, tuple[bytes, Callable[[requests.Response], bool]]]:
    junk = os.urandom(1_000_000)
    return {
        "refused 1 kB": (b"\0" + junk[:999], refused),
        "refused 1 MB": (b"\0" + junk[1:], refused),
        "4K stored": (jpeg_of(3840, 2160, "motorcycle_left.png"), stored_as_uploaded),
    }


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    name, _, assignments = text.partition(":")
    env = dict(item.split("=", 1) for item in assignments.split(",") if item)
    if not name or not env:
        raise argparse.ArgumentTypeError(f"expected NAME:K=V[,K=V…], got {text!r}")
    return name, env


def measure(env: dict[str, str], seconds: float, threads: int) -> list[dict[str, Any]]:
    rows = []
    with Service(env=env) as service:
        for label, (data, expected) in workloads().items():
            hammer(service.url, data, threads, 3, expected)  # warm-up
            result = hammer(service.url, data, threads, seconds, expected)
            cpu = result["cpu_ms_per_upload"]
            row = {"workload": label, "per_s": result["uploads_per_s"], "errors": result["errors"]}
            row |= {key: cpu.get(process, 0.0) for key, process in PROCESSES.items()}
            row["total"] = sum(cpu.values())
            rows.append(row | {"cpu_ms_per_upload": cpu})
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--variant", type=parse_variant, action="append", default=[])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    info = describe()
    print(header(info), flush=True)
    variants = {"shipped": {}, **dict(args.variant)}
    report: dict[str, Any] = {"machine": info, "variants": variants, "rounds": []}
    columns = ["variant", "workload", "per_s", "errors", *PROCESSES, "total"]
    for number in range(args.rounds):
        rows = []
        for name, env in variants.items():
            rows += [{"variant": name} | row for row in measure(env, args.seconds, args.threads)]
        report["rounds"].append(rows)
        print(f"round {number + 1}: requests/s and CPU ms per request", flush=True)
        print(table(rows, columns), flush=True)
    write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
