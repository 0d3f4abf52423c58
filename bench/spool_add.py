"""What one spool add costs with many entries already waiting (the issue measured 319 ms at 20,000 with
a folder scan per add): median and worst of ``--adds`` adds of a 4 KiB object, at each ``--waiting``.

    python -m bench.spool_add [--waiting 0 20000] [--adds 50]

Entries left by earlier replicas are made as plain files (their names and sizes are all an add could
look at); each run starts a ``Spool`` on them, which counts the folder once, as a replica does at start.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from deployments.storage.spool import Spool


def measure(waiting: int, adds: int) -> tuple[float, float, float]:
    """(start-up count s, median add ms, worst add ms) with ``waiting`` entries in the folder."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for i in range(waiting):
            (root / f"{i:020d}-{i:016x}.obj").write_bytes(b"x" * 64)
        started = time.perf_counter()
        spool = Spool(root, 1 << 40)
        start_up = time.perf_counter() - started
        times = []
        for i in range(adds):
            started = time.perf_counter()
            spool.add(f"upscaled/bench-{i}.png", bytes(4096), "image/png", {})
            times.append((time.perf_counter() - started) * 1000)
    return start_up, statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waiting", type=int, nargs="+", default=[0, 20_000])
    parser.add_argument("--adds", type=int, default=50)
    args = parser.parse_args()
    for waiting in args.waiting:
        start_up, median_ms, worst_ms = measure(waiting, args.adds)
        print(
            f"{waiting:>7} waiting: start-up {start_up:.2f} s, add median {median_ms:.2f} ms, worst {worst_ms:.2f} ms"
        )


if __name__ == "__main__":
    main()
