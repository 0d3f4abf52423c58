"""Debian's redis-server on 127.0.0.1 for tests (scripts/test installs it when missing)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from bench.s3servers import free_ports
from tests.parts import skip_if_listed


@contextmanager
def redis_server(folder: Path, password: str | None = None) -> Iterator[str]:
    """A throwaway Redis with its own folder and append-only file; yields its ``redis://`` URL (which
    carries ``password`` when one is given: the server then refuses clients without it)."""
    binary = shutil.which("redis-server")
    if binary is None:
        skip_if_listed("redis-server")
        raise RuntimeError("redis-server is not installed: run scripts/test (it installs Debian's redis-server)")
    (port,) = free_ports(1)
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "",
               "--appendonly", "yes", "--protected-mode", "no", "--loglevel", "warning"]  # fmt: skip
    command += ["--requirepass", password] if password else []
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    url = f"redis://{f':{password}@' if password else ''}127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(10)
