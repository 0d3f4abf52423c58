"""Request limits (``RATE_LIMIT``, e.g. ``60/minute``; ``AUTH_FAILURE_LIMIT``) with the ``limits`` library.

The decision is the answer of ``limits``' ``hit()``, which counts and decides in one atomic step (a Lua
script on Redis, a lock in memory): 32 requests at once under ``10/minute`` let exactly 10 in. A
``test()`` followed by a ``hit()`` would race (both readers see room, both count). With several limits
(``10/second;1000/hour``) each is hit in turn, shortest window first, and the first refusal ends the
request: a burst refused by the short window never spends the long one, and a request refused by the
long window has spent only a short-window slot that expires soon. That is the library's atomicity per
limit, not a transaction over all of them: a refused request may have counted in the windows before
the one that refused it.

Counters live where ``counter_store`` says: ``RATE_LIMIT_STORAGE_URL``; else the jobs broker's Redis
(``JOBS_BROKER_URL``, or the embedded broker's unix socket when it runs), so a limit is the service's,
not each ingress replica's; ``memory://`` (per replica) only when no broker is there (in-process
tests). If the store does not answer, requests are let through (and logged): the limit protects the
service, it must not take it down.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from configs.settings import Settings

log = logging.getLogger("ray.serve")
NAMESPACE = "visioncloud"


def storage_url(settings: Settings, embedded_broker: bool = False) -> str:
    """The counters' store: explicit, else the jobs broker's Redis (``embedded_broker``: the embedded
    one runs, reach it on its unix socket), else this replica's memory."""
    if settings.rate_limit_storage_url:
        return settings.rate_limit_storage_url
    if settings.jobs_broker_url is not None:  # redis:// or rediss:// (Settings checks)
        return settings.jobs_broker_url.get_secret_value()
    if embedded_broker:
        return f"redis+unix://{settings.embedded_broker_socket}"
    return "memory://"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int
    window_s: int

    def headers(self) -> dict[str, str]:
        """The IETF draft's RateLimit header fields, as most gateways send them."""
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
            "RateLimit-Policy": f"{self.limit};w={self.window_s}",
        }


class Limiter:
    def __init__(self, spec: str, url: str = "memory://") -> None:
        self.spec = spec
        self.items: list[RateLimitItem] = sorted(parse_many(spec), key=lambda item: item.get_expiry())
        self.storage = storage_from_string(url)
        self.strategy = MovingWindowRateLimiter(self.storage)
        self._in_memory = isinstance(self.storage, MemoryStorage)

    async def hit(self, identity: str) -> Decision | None:
        """Count one request for ``identity`` and decide on it; ``None`` when the store failed (let it in)."""
        return await self._run(self.hit_now, identity)

    async def refusal(self, identity: str) -> Decision | None:
        """The refusal ``identity`` would get now (counting nothing); ``None`` when it has room left (or
        the store failed). Reads the window's figures only when refused: the allowed path is one test."""
        return await self._run(self.refusal_now, identity)

    async def unavailable_reason(self) -> str | None:
        """Why the counters cannot be kept now (``None``: they can). The limiter lets requests in while
        its store does not answer, so the ingress is not ready until it does: a replica that reported
        healthy before the embedded broker's Redis was up let a burst past ``RATE_LIMIT``."""
        if self._in_memory:
            return None
        if await asyncio.to_thread(self.storage.check):
            return None
        return "the rate limits' counter store does not answer"

    async def _run(self, call: Callable[[str], Decision | None], identity: str) -> Decision | None:
        if self._in_memory:
            return call(identity)  # no await in between: atomic on this replica's event loop
        return await asyncio.to_thread(call, identity)  # a network round trip: off the event loop

    def hit_now(self, identity: str) -> Decision | None:
        """Blocking ``hit``: the first limit (shortest window first) whose atomic hit refuses decides."""
        try:
            allowed = all(self.strategy.hit(item, NAMESPACE, identity) for item in self.items)
            return self._decision(allowed, identity)
        except Exception as exc:
            log.warning("rate limit store failed, letting the request in: %s", type(exc).__name__)
            return None

    def refusal_now(self, identity: str) -> Decision | None:
        try:
            if all(self.strategy.test(item, NAMESPACE, identity) for item in self.items):
                return None
            return self._decision(False, identity)
        except Exception as exc:
            log.warning("rate limit store failed, letting the request in: %s", type(exc).__name__)
            return None

    def _decision(self, allowed: bool, identity: str) -> Decision:
        """The tightest of the configured limits, as the headers report it."""
        now, tightest = time.time(), None
        for item in self.items:
            stats = self.strategy.get_window_stats(item, NAMESPACE, identity)
            reset = max(1, math.ceil(stats.reset_time - now))
            candidate = Decision(allowed, item.amount, stats.remaining, reset, item.get_expiry())
            if tightest is None or (candidate.remaining, -candidate.reset_s) < (tightest.remaining, -tightest.reset_s):
                tightest = candidate
        assert tightest is not None  # parse_many returns at least one item
        return tightest
