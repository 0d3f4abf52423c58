"""A bound on the bytes of pixels one upscaler replica holds at once; requests beyond it queue.

``max_ongoing_requests`` counts requests, not memory: a ×4 upscale holds an output sixteen times its
input's pixels, so a full replica of large ×4 uploads would hold several gigabytes. Each request
``hold``s its input and output bytes for as long as it has them (from its tiles' forward passes to the
end of encoding); when the budget is spent, later requests wait in arrival order. The forward pass
runs one batch at a time, so a few images in flight keep it as busy as many: the queue costs latency
only where memory would otherwise run out. An image larger than the
whole budget is admitted alone, so no request waits forever.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

# Room for a couple of ordinary ×4 requests at once (``pixel_bytes``), while a 4K ×4 runs alone; the
# peak memory it keeps is measured by ``python -m bench.peak_memory --service`` (docs/benchmarks.md,
# "Memory").
DEFAULT_BYTES = 256 * 1024 * 1024


def pixel_bytes(height: int, width: int, channels: int, scale: int) -> int:
    """What one upscale holds: the input pixels and the preallocated upscaled output."""
    return height * width * channels * (1 + scale * scale)


class PixelBudget:
    def __init__(self, limit: int = DEFAULT_BYTES) -> None:
        self.limit = limit
        self.in_use = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def set_limit(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a pixel budget must be positive, got {limit}")
        self.limit = limit
        self._wake()

    @asynccontextmanager
    async def hold(self, nbytes: int) -> AsyncIterator[None]:
        """Wait until ``nbytes`` fit beside what is held (first come, first served), hold them inside."""
        await self._acquire(nbytes)
        try:
            yield
        finally:
            self.in_use -= nbytes
            self._wake()

    def _fits(self, nbytes: int) -> bool:
        return self.in_use == 0 or self.in_use + nbytes <= self.limit

    async def _acquire(self, nbytes: int) -> None:
        if not self._waiting and self._fits(nbytes):
            self.in_use += nbytes
            return
        granted = asyncio.get_running_loop().create_future()
        self._waiting.append((nbytes, granted))
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():  # granted as it was cancelled: give it back
                self.in_use -= nbytes
            else:
                self._waiting.remove((nbytes, granted))
            self._wake()
            raise

    def _wake(self) -> None:
        while self._waiting and self._fits(self._waiting[0][0]):
            nbytes, granted = self._waiting.popleft()
            self.in_use += nbytes
            granted.set_result(None)
