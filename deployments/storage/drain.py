"""Whether the bucket answers, and the thread that drains the spool into it once it does.

The thread only does blocking I/O (boto3, the file system), so it runs beside the replica's event loop
rather than on it. It wakes every ``interval_s``, delivers what waits in order, and backs off (doubling,
up to ``max_backoff_s``) while the bucket does not answer. An entry the bucket refuses for good goes to
the spool's ``dead/`` and the pass goes on, so one object never holds back the rest or keeps the
bucket marked down.

The thread must not end while the replica lives: a pass catches what it raises, and if the thread ends
anyway (a bug that escapes) it says so at ERROR and ``Storage.check_health`` fails from then on, so Serve
replaces the replica instead of leaving the spool undrained behind a warning.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from deployments.contracts.errors import StorageConflictError, StorageUnreachableError
from deployments.storage.backend import Backend
from deployments.storage.spool import DrainPass, Spool, SpoolEntry

log = logging.getLogger("ray.serve")


class BucketState:
    """Set down by the first write that fails for a transient reason: later writes go straight to the
    spool (no timeout per upload) until the drainer stores something or the bucket answers a probe."""

    def __init__(self) -> None:
        self.down_since: float | None = None
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def mark_down(self) -> None:
        with self._lock:
            if self.down_since is None:
                self.down_since = time.monotonic()
                log.warning("storage: the bucket is unreachable; new objects go to the spool")

    def mark_up(self) -> None:
        with self._lock:
            if self.down_since is not None:
                log.warning("storage: the bucket answers again after %.0f s", time.monotonic() - self.down_since)
                self.down_since = None


class Drainer:
    def __init__(
        self,
        spool: Spool,
        backend: Backend,
        state: BucketState,
        report: Callable[[DrainPass], None],
        interval_s: float = 1.0,
        max_backoff_s: float = 15.0,
    ) -> None:
        self.spool, self.backend, self.state, self.report = spool, backend, state, report
        self.interval_s, self.max_backoff_s = interval_s, max_backoff_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spool-drainer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        delay = self.interval_s
        try:
            while not self._stop.wait(delay):
                delay = self.pass_once(delay)
        except BaseException:
            log.critical("spool: the drainer thread has died; this replica fails its health check", exc_info=True)
            raise

    def pass_once(self, delay: float) -> float:
        """One drain pass; returns the wait before the next."""
        done = DrainPass()
        try:
            self.spool.drain(self.deliver, done)
            if self.state.down and not self.spool.totals().objects:
                self.backend.check_writable()
                self.state.mark_up()
            delay = self.interval_s
        except StorageUnreachableError:
            self.state.mark_down()
            delay = min(delay * 2, self.max_backoff_s)
        except Exception:  # a refusal that is not transient, or a bug: keep the entries, retry later
            log.exception("spool: drain pass failed; the entries stay in the spool")
            delay = self.max_backoff_s
        try:
            self.report(done)
        except Exception:  # the metrics are not worth the drainer
            log.exception("spool: reporting a drain pass failed")
        return delay

    def deliver(self, entry: SpoolEntry) -> None:
        try:
            self.backend.put(entry.key, entry.data, entry.content_type, entry.metadata)
        except StorageConflictError:
            # Keys are content addresses: only the same logical output made with other bytes (another
            # precision or device, from a retry) can be there. It is stored; this copy is not needed.
            log.warning("spool: %r was already stored with other bytes (a retry's output); keeping that", entry.key)
        self.state.mark_up()
