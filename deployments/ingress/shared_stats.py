"""The ``/api/stats`` counters every ingress replica shares, kept in the broker's Redis.

Each replica used to count the uploads it served itself, so with two replicas the page's figures flipped
between refreshes. Now every outcome is counted once in Redis, in one ``MULTI``/``EXEC`` transaction of
atomic increments (``HINCRBY``, ``INCR``, ``LPUSH`` + ``LTRIM``), and every replica reads the same
figures back. A job item is counted once by whichever replica sees it first (``SET NX`` on its id).

Keys (prefix ``visioncloud:stats:``): ``counts`` (a hash: per folder, per score bin, upscale tried/ok),
``recent`` (the last ``SAMPLES_PER_BUCKET`` processing times), ``minute:<m>:n`` / ``minute:<m>:s`` (a
minute's count and timings, expiring after the plotted window), ``seen:<item>`` (a job item counted),
``since`` (when counting began). The counts live as long as the broker's data (the embedded broker keeps
an append-only file), so they are the service's, not a replica's lifetime's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from deployments.contracts.values import Folder, Status
from deployments.ingress.shared_redis import NAMESPACE
from deployments.ingress.stats import (
    SAMPLES_PER_BUCKET,
    SCORE_EDGES,
    WINDOW_MINUTES,
    Stats,
    result_fields,
    score_bin,
    summary_of,
    timeline_point,
)

log = logging.getLogger("ray.serve")
PREFIX = f"{NAMESPACE}:stats:"
SEEN_S = 8 * 24 * 3600  # past the jobs' lifetime (JOB_TTL_S, 7 days by default): an item is never counted twice


class StatsBook(Protocol):
    """Where ``/api/stats`` counts: this process (``LocalStats``) or the service (``SharedStats``)."""

    async def record(
        self,
        folder: str,
        status: str,
        score: float,
        seconds: float,
        item_id: str | None = None,
        at: float | None = None,
    ) -> bool: ...

    async def record_result(self, result: Mapping[str, Any], item_id: str) -> bool: ...

    async def summary(self) -> dict[str, Any]: ...


class LocalStats:
    """``Stats`` in this process's memory, for the in-process app (it has no broker)."""

    def __init__(self, stats: Stats | None = None) -> None:
        self.stats = stats or Stats()

    async def record(
        self,
        folder: str,
        status: str,
        score: float,
        seconds: float,
        item_id: str | None = None,
        at: float | None = None,
    ) -> bool:
        return self.stats.record(folder, status, score, seconds, item_id, at)

    async def record_result(self, result: Mapping[str, Any], item_id: str) -> bool:
        return self.stats.record_result(result, item_id)

    async def summary(self) -> dict[str, Any]:
        return self.stats.summary()


class SharedStats:
    def __init__(self, client: aioredis.Redis, clock: Callable[[], float] = time.time) -> None:
        self.client, self.clock = client, clock

    async def record(
        self,
        folder: str,
        status: str,
        score: float,
        seconds: float,
        item_id: str | None = None,
        at: float | None = None,
    ) -> bool:
        """Count one processed image, finished ``at`` (Unix seconds; now by default). An ``item_id``
        already counted, by any replica, is ignored (returns False). A Redis that does not answer loses
        the count (logged), never the upload it counts."""
        try:
            return await self._record(folder, status, score, seconds, item_id, at)
        except (RedisError, OSError) as exc:
            log.warning("/api/stats: not counted, the broker's Redis did not answer: %s", type(exc).__name__)
            return False

    async def _record(
        self, folder: str, status: str, score: float, seconds: float, item_id: str | None, at: float | None
    ) -> bool:
        if item_id is not None and not await self.client.set(PREFIX + f"seen:{item_id}", 1, nx=True, ex=SEEN_S):
            return False
        now = self.clock()
        minute = int((now if at is None else at) // 60)
        async with self.client.pipeline(transaction=True) as tx:
            tx.set(PREFIX + "since", now, nx=True)
            tx.hincrby(PREFIX + "counts", f"folder:{folder}", 1)
            tx.hincrby(PREFIX + "counts", f"score:{score_bin(score)}", 1)
            if folder != Folder.GOOD_QUALITY:
                tx.hincrby(PREFIX + "counts", "upscale:tried", 1)
                tx.hincrby(PREFIX + "counts", "upscale:ok", int(status == Status.SUCCESS and folder == Folder.UPSCALED))
            tx.lpush(PREFIX + "recent", seconds)
            tx.ltrim(PREFIX + "recent", 0, SAMPLES_PER_BUCKET - 1)
            if minute > int(now // 60) - WINDOW_MINUTES:  # older minutes are counted, not plotted
                expiry = WINDOW_MINUTES * 60 + 120
                tx.incr(PREFIX + f"minute:{minute}:n")
                tx.expire(PREFIX + f"minute:{minute}:n", expiry)
                tx.rpush(PREFIX + f"minute:{minute}:s", seconds)
                tx.ltrim(PREFIX + f"minute:{minute}:s", 0, SAMPLES_PER_BUCKET - 1)
                tx.expire(PREFIX + f"minute:{minute}:s", expiry)
            await tx.execute()
        return True

    async def record_result(self, result: Mapping[str, Any], item_id: str) -> bool:
        folder, status, score, seconds, processed = result_fields(result)
        return await self.record(folder, status, score, seconds, item_id, processed)

    async def summary(self) -> dict[str, Any]:
        """The service's figures, read in one round trip (the plotted window's minutes included)."""
        now = self.clock()
        minutes = range(int(now // 60) - WINDOW_MINUTES + 1, int(now // 60) + 1)
        async with self.client.pipeline(transaction=True) as tx:
            tx.set(PREFIX + "since", now, nx=True)
            tx.get(PREFIX + "since")
            tx.hgetall(PREFIX + "counts")
            tx.lrange(PREFIX + "recent", 0, -1)
            for minute in minutes:
                tx.get(PREFIX + f"minute:{minute}:n")
                tx.lrange(PREFIX + f"minute:{minute}:s", 0, -1)
            _, since, raw_counts, recent, *per_minute = await tx.execute()
        counts = {key.decode(): int(value) for key, value in raw_counts.items()}
        folders = {f.value: counts.get(f"folder:{f.value}", 0) for f in Folder}
        folders |= {k.removeprefix("folder:"): v for k, v in counts.items() if k.startswith("folder:")}
        bins = [counts.get(f"score:{i}", 0) for i in range(len(SCORE_EDGES))]
        timeline = [
            timeline_point(minute, int(n), [float(s) for s in samples])
            for minute, n, samples in zip(minutes, per_minute[::2], per_minute[1::2], strict=True)
            if n is not None and int(n) > 0
        ]
        upscale = (counts.get("upscale:tried", 0), counts.get("upscale:ok", 0))
        return summary_of(folders, bins, upscale, [float(s) for s in recent], timeline, float(since))


def stats_book(client: aioredis.Redis | None) -> StatsBook:
    """The service's counters in the broker's Redis, or this process's without one."""
    return SharedStats(client) if client is not None else LocalStats()
