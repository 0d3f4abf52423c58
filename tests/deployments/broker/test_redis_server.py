"""The embedded broker's Redis: needs no install, keeps what it queued across restarts, adopts a server
already on its socket, and never outlives the replica that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deployments.broker.redis_server import EmbeddedRedis


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "jobs"


def embedded(folder: Path) -> EmbeddedRedis:
    return EmbeddedRedis(folder, folder / "redis.sock")


def test_what_was_written_survives_a_restart(folder: Path) -> None:
    first = embedded(folder)
    first.start()
    first.client().rpush("queue", b"item-1", b"item-2")
    first.stop()
    assert (folder / "appendonly.aof").stat().st_size > 0
    second = embedded(folder)
    second.start()
    try:
        assert second.client().lrange("queue", 0, -1) == [b"item-1", b"item-2"]
    finally:
        second.stop()


def test_a_server_already_answering_is_adopted(folder: Path) -> None:
    first = embedded(folder)
    first.start()
    try:
        second = embedded(folder)
        second.start()
        assert second.process is None and second.ping()
    finally:
        first.stop()


def test_the_server_dies_with_the_process_that_started_it(folder: Path) -> None:
    script = (
        "import sys, time; from pathlib import Path; from deployments.broker.redis_server import EmbeddedRedis;"
        f"r = EmbeddedRedis(Path({str(folder)!r}), Path({str(folder / 'redis.sock')!r})); r.start();"
        "print(r.process.pid, flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=Path(__file__).parents[3])
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)  # as a replica killed by Ray would die
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    pytest.fail("the embedded Redis outlived its parent")


def test_the_server_is_started_without_running_the_parents_fork_handlers(folder: Path) -> None:
    # A Ray worker's fork handlers (gRPC's) once aborted in the child and left an alarm that killed the
    # new Redis 3 s later; the server must be spawned without them (vfork), never with a plain fork.
    script = (
        "import os; from pathlib import Path; from deployments.broker.redis_server import EmbeddedRedis;"
        "os.register_at_fork(after_in_child=lambda: os._exit(7));"
        f"r = EmbeddedRedis(Path({str(folder)!r}), Path({str(folder / 'redis.sock')!r})); r.start();"
        "print(r.ping(), flush=True); r.stop()"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=Path(__file__).parents[3])
    assert run.returncode == 0 and run.stdout.strip() == "True", run.stderr[-2000:]
