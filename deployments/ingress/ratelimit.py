"""Per-key request limits (``RATE_LIMIT``, e.g. ``60/minute``) with the ``limits`` library.

Counters live in Redis when ``RATE_LIMIT_STORAGE_URL`` (or the jobs broker, when it is ``redis://``) is
set, so every ingress replica shares them; otherwise in memory, per replica (with N replicas a key
gets up to N× the limit). The moving-window strategy counts exactly the requests of the last window.
If the counter store does not answer, requests are let through (and logged): the limit protects the
service, it must not take it down.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from configs.settings import Settings

log = logging.getLogger("ray.serve")
NAMESPACE = "visioncloud"


def storage_url(settings: Settings) -> str:
    """The counters' store: explicit, else the jobs broker when it is Redis, else this replica's memory."""
    if settings.rate_limit_storage_url:
        return settings.rate_limit_storage_url
    if settings.jobs_broker_url is not None:  # redis:// or rediss:// (Settings checks)
        return settings.jobs_broker_url.get_secret_value()
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
        self.items: list[RateLimitItem] = parse_many(spec)
        self.storage = storage_from_string(url)
        self.strategy = MovingWindowRateLimiter(self.storage)
        self._in_memory = isinstance(self.storage, MemoryStorage)

    async def hit(self, identity: str) -> Decision | None:
        """Count one request for ``identity``; ``None`` when the counter store failed (let it in)."""
        if self._in_memory:
            return self._hit(identity)
        return await asyncio.to_thread(self._hit, identity)  # a network round trip: off the event loop

    def _hit(self, identity: str) -> Decision | None:
        try:
            allowed = all(self.strategy.test(item, NAMESPACE, identity) for item in self.items)
            if allowed:
                for item in self.items:
                    self.strategy.hit(item, NAMESPACE, identity)
            return self._decision(allowed, identity)
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
