"""The monitoring summary (``/api/stats``) the web page draws: what the service processed (counted in the
broker's Redis by every ingress replica, so any replica answers the same), job items finished by the
jobs consumer, queue and spool depth, and replica counts from the Serve controller."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from ray import serve

from configs.settings import Settings
from deployments.contracts.handles import JobsHandle, StorageHandle
from deployments.contracts.jobs import ItemStatus
from deployments.flow.recent import Recent
from deployments.ingress.shared_stats import StatsBook
from deployments.ingress.stats import Stats

log = logging.getLogger("ray.serve")

JOBS_SCANNED = 50  # the newest jobs whose finished items /api/stats counts (each once)


class Replicas:
    """Replica counts per deployment from the Serve controller, asked at most every ``ttl_s``."""

    def __init__(self, ttl_s: float = 10.0) -> None:
        self.ttl_s = ttl_s
        self._at = -float("inf")
        self._value: dict[str, int] | None = None

    def _ask(self) -> dict[str, int] | None:
        app = serve.get_replica_context().app_name
        status = serve.status().applications.get(app)
        if status is None:
            return None
        return {
            name: int(d.replica_states.get("RUNNING", 0))  # type: ignore[call-overload]
            for name, d in status.deployments.items()
        }

    async def get(self) -> dict[str, int] | None:
        if time.monotonic() - self._at > self.ttl_s:
            self._at = time.monotonic()
            try:
                self._value = await asyncio.to_thread(self._ask)
            except Exception as exc:  # no controller (in-process tests) or a slow one: unknown, not an error
                log.debug("replica counts unavailable: %s", exc)
                self._value = None
        return self._value


async def count_job_items(jobs: JobsHandle, stats: StatsBook) -> None:
    """Job items are finished by the jobs consumer, not here: count those of the newest jobs from
    their records (each item once, by job id and index), so every replica sees the same job work."""
    views, _ = await jobs.list_jobs.remote(JOBS_SCANNED, None, None)  # owner None: every key's jobs
    for job in views:
        for item in job["items"]:
            result = item["result"]
            if result and item["status"] in (ItemStatus.SUCCESS, ItemStatus.ERROR):
                await stats.record_result(result, f"{job['job_id']}:{item['index']}")


async def _or_none(probe: Callable[[], Awaitable[Any]], what: str) -> Any:
    try:
        return await asyncio.wait_for(probe(), 5.0)
    except Exception as exc:  # monitoring must answer even when a part of the service does not
        log.warning("/api/stats: %s unavailable: %s", what, exc)
        return None


class Summary:
    """The summary's figures, computed afresh; ``null`` marks one this service cannot know now."""

    def __init__(self, storage: StorageHandle, settings: Settings, stats: StatsBook, jobs: JobsHandle | None) -> None:
        self.storage, self.settings, self.stats, self.jobs = storage, settings, stats, jobs
        self.replicas = Replicas()

    async def compute(self) -> dict[str, Any]:
        queue_depth = None
        spool = await _or_none(self.storage.spool_status.remote, "spool status")  # None: no spool (local storage)
        if self.jobs is not None:
            jobs = self.jobs
            await _or_none(lambda: count_job_items(jobs, self.stats), "job records")
            queue_depth = await _or_none(jobs.queue_depth.remote, "queue depth")
        counted = await _or_none(self.stats.summary, "counters")  # None: the broker's Redis did not answer
        return {
            **(counted or Stats().summary()),
            "quality_threshold": self.settings.quality_threshold,
            "upscale_scale": self.settings.upscale_scale,
            "storage": self.settings.storage_backend,
            "queue_depth": queue_depth,
            "spool_depth": spool.objects if spool is not None else None,
            "replicas": await self.replicas.get(),
            "generated_at": time.time(),
        }


def stats_router(
    storage: StorageHandle, settings: Settings, stats: StatsBook, jobs: JobsHandle | None = None
) -> APIRouter:
    router = APIRouter()
    recent = Recent(Summary(storage, settings, stats, jobs).compute, settings.stats_cache_s)

    @router.get("/api/stats")
    async def summary() -> dict[str, Any]:
        """What the service has processed, whichever ingress replica answers (images per folder, quality
        scores, upscale success rate, processing time p50/p95 per minute), the settings that route
        images, queue depth (jobs waiting in the broker), spool depth (objects waiting for the bucket)
        and replicas. ``null``
        marks a figure this service cannot know now. One answer serves every caller for
        ``STATS_CACHE_S`` (``generated_at`` says when it was made): a flood of calls costs no more."""
        return await recent.get()

    return router
