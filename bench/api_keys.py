"""CPU per presented API key at the door: SHA-256 lines against the older scrypt lines.

    python -m bench.api_keys [--keys 6] [--tries 2000]

``--keys`` keys in the ring; ``--tries`` distinct wrong keys and as many right ones are looked up, and
the CPU time per lookup printed (``time.process_time``). A ``scrypt$`` file line costs one scrypt per
line for every wrong key (timed over a few tries: each is ~40 ms), which is why the ingress checks the
address's wrong-key budget before it and why such lines should be replaced.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections.abc import Callable

from deployments.ingress.api_keys import KeyRing, StoredKey
from deployments.ingress.legacy_keys import ScryptLine


def per_call_us(call: Callable[[str], object], keys: list[str]) -> float:
    started = time.process_time()
    for key in keys:
        call(key)
    return (time.process_time() - started) / len(keys) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=6)
    parser.add_argument("--tries", type=int, default=2000)
    args = parser.parse_args()
    right = [secrets.token_urlsafe(32) for _ in range(args.keys)]
    wrong = [secrets.token_urlsafe(32) for _ in range(args.tries)]
    ring = KeyRing([StoredKey.parse(StoredKey.line_for(k)) for k in right])
    legacy = KeyRing([], [ScryptLine.of(k, secrets.token_bytes(16)) for k in right])
    rows = [
        ("sha256 lines, wrong key", per_call_us(ring.lookup, wrong)),
        ("sha256 lines, right key", per_call_us(ring.lookup, right * (args.tries // args.keys))),
        ("scrypt lines, wrong key", per_call_us(legacy.verify_legacy, wrong[:3])),
    ]
    for name, micros in rows:
        sys.stdout.write(f"{name:<26} {micros:>12,.1f} µs CPU per lookup ({args.keys} keys)\n")


if __name__ == "__main__":
    main()
