"""The /api/stats counters in the broker's Redis (a real redis-server, no Ray): every replica counts
into them and reads the same figures back, with the same arithmetic as one process's ``Stats``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import pytest
import redis

from configs.settings import load_settings
from deployments.ingress.shared_redis import broker_redis_url, connect
from deployments.ingress.shared_stats import LocalStats, SharedStats
from deployments.ingress.stats import Stats

T = TypeVar("T")
NOW = 1_800_000_000.0
RECORDS = [("upscaled", "success", 0.02, 1.0), ("upscaled", "success", 0.3, 2.0),
           ("couldn't_upscale", "error", 0.3, 3.0), ("good_quality", "success", 1.0, 0.1),
           ("good_quality", "success", 5.0, 0.1)]  # fmt: skip


def run(call: Awaitable[T]) -> T:
    return asyncio.run(call)  # type: ignore[arg-type]


@pytest.fixture
def url(redis_url: str) -> str:
    redis.Redis.from_url(redis_url).flushdb()
    return redis_url


def shared(url: str) -> SharedStats:
    return SharedStats(connect(url), clock=lambda: NOW)


def test_two_replicas_count_into_one_summary(url: str) -> None:
    async def both() -> tuple[dict[str, Any], dict[str, Any]]:
        one, two = shared(url), shared(url)
        await asyncio.gather(*(
            (one if i % 2 else two).record(*record) for i, record in enumerate(RECORDS)))  # fmt: skip
        return await one.summary(), await two.summary()

    first, second = run(both())
    assert first == second
    assert first["images_total"] == 5 and first["images_per_folder"] == {
        "good_quality": 2, "upscaled": 2, "couldn't_upscale": 1}  # fmt: skip
    assert first["upscale"] == {"attempted": 3, "succeeded": 2, "success_rate": pytest.approx(2 / 3)}


def test_the_shared_summary_is_the_one_process_summary_of_the_same_records(url: str) -> None:
    local = Stats(lambda: NOW)
    for record in RECORDS:
        local.record(*record)

    async def scenario() -> dict[str, Any]:
        stats = shared(url)
        for record in RECORDS:
            await stats.record(*record)
        return await stats.summary()

    assert run(scenario()) == {**local.summary(), "since": NOW}


def test_a_job_item_is_counted_once_whichever_replica_sees_it(url: str) -> None:
    result = {"folder": "upscaled", "status": "success", "quality_score": 0.01,
              "processed_at": "2027-01-15T08:00:30.5Z", "timings_ms": {"total": 250.0}}  # fmt: skip

    async def scenario() -> tuple[bool, bool, dict[str, Any]]:
        one, two = shared(url), shared(url)
        return (
            await one.record_result(result, "job-1:0"),
            await two.record_result(result, "job-1:0"),
            await two.summary(),
        )

    counted, again, summary = run(scenario())
    assert counted and not again
    assert summary["images_total"] == 1  # placed by processed_at (NOW is 2027-01-15T08:00Z), not "now"
    assert summary["timeline"] == [{"t": 1_800_000_000, "count": 1, "p50_ms": 250.0, "p95_ms": 250.0}]


def test_the_timeline_has_the_window_s_minutes_with_their_percentiles(url: str) -> None:
    async def scenario() -> dict[str, Any]:
        stats = shared(url)
        for seconds in (0.1, 0.3):
            await stats.record("upscaled", "success", 0.1, seconds, at=NOW - 60)
        await stats.record("upscaled", "success", 0.1, 0.5)
        await stats.record("upscaled", "success", 0.1, 0.2, at=NOW - 3600 * 2)  # counted, too old to plot
        return await stats.summary()

    summary = run(scenario())
    minute = int(NOW // 60) * 60
    assert [(p["t"], p["count"], p["p50_ms"], p["p95_ms"]) for p in summary["timeline"]] == [
        (minute - 60, 2, 100.0, 300.0), (minute, 1, 500.0, 500.0)]  # fmt: skip
    assert summary["images_total"] == 4 and summary["processing_ms"]["samples"] == 4


def test_nothing_recorded_is_null_not_zero(url: str) -> None:
    summary = run(shared(url).summary())
    assert summary["images_total"] == 0 and summary["upscale"]["success_rate"] is None
    assert summary["processing_ms"]["p50"] is None and summary["timeline"] == [] and summary["since"] == NOW


def test_the_counters_live_in_the_brokers_redis_and_in_memory_only_without_one(tmp_path: Any) -> None:
    assert broker_redis_url(load_settings(jobs_broker_url="redis://broker:6379/0")) == "redis://broker:6379/0"
    embedded = load_settings(jobs_dir=tmp_path)
    assert broker_redis_url(embedded, embedded_broker=True) == f"unix://{embedded.embedded_broker_socket}"
    assert broker_redis_url(embedded) is None  # the in-process app: no broker, LocalStats
    assert run(LocalStats().record("upscaled", "success", 0.1, 0.1))


def test_a_redis_that_does_not_answer_loses_the_count_not_the_upload() -> None:
    stats = SharedStats(connect("redis://127.0.0.1:9/0"), clock=lambda: NOW)  # the discard port: refused
    assert run(stats.record("upscaled", "success", 0.1, 0.1)) is False
