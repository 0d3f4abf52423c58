"""A recent answer, reused: one computation serves every caller for ``ttl_s`` seconds.

``/api/stats`` and ``/api/health`` are open or cheap to call, and each answer costs handle calls, a
bucket HEAD and a spool write: a flood of them must not become a flood of those. ``Recent`` keeps the
last answer for ``ttl_s`` and shares one computation in flight between concurrent callers (they all
await the same task), so N callers in a window cost one computation. A computation that raised, or was
cancelled, is not kept: the next caller tries again. Cancelled happens for real: Serve cancels the handle
calls a request made when its client goes away, and the shared computation's calls belong to the request
that started it; a health check kept that way answered every later caller with a cancellation (500).
Nothing here is thread-safe: one event loop owns an instance.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import Generic, TypeVar

T = TypeVar("T")


class Recent(Generic[T]):
    def __init__(
        self, compute: Callable[[], Awaitable[T]], ttl_s: float, clock: Callable[[], float] | None = None
    ) -> None:
        self.compute = compute
        self.ttl_s = ttl_s
        self._clock = clock
        self._task: asyncio.Future[T] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = -float("inf")

    def _reusable(self, loop: asyncio.AbstractEventLoop) -> bool:
        task = self._task
        if task is None or self._loop is not loop:
            return False
        if not task.done():
            return True  # in flight: join it
        if task.cancelled() or task.exception() is not None:
            return False
        return self.now() - self._started < self.ttl_s

    def now(self) -> float:
        """``clock``, or this module's ``monotonic`` (looked up at each call, so a test can move it)."""
        return (self._clock or monotonic)()

    async def get(self) -> T:
        """The answer computed at most ``ttl_s`` ago (started then), or a new one. When the shared
        computation was cancelled under another caller, this caller starts a new one (once)."""
        for attempt in range(2):
            task = self._current()
            try:
                # shield: a caller that gives up (a client that went away) does not cancel the others' answer.
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                me = asyncio.current_task()
                if attempt or not task.cancelled() or (me is not None and me.cancelling()):
                    raise  # this caller itself was cancelled, or the computation was twice
        raise AssertionError("unreachable")

    def _current(self) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        if not self._reusable(loop):
            self._started = self.now()
            self._loop = loop
            self._task = asyncio.ensure_future(self.compute())
        assert self._task is not None
        return self._task
