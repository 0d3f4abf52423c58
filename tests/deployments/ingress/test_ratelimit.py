"""Rate limits: exact per identity under concurrency (the atomic hit decides), shared by every ingress
replica through Redis (a real redis-server on 127.0.0.1: the shared ``redis_url`` fixture; the embedded
broker's own Redis on its unix socket), per replica in memory, and never the reason the service fails."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bench.s3servers import free_ports
from configs.settings import load_settings
from deployments.broker.redis_server import EmbeddedRedis
from deployments.flow.flow import Flow
from deployments.ingress.api import create_api
from deployments.ingress.api_keys import KeyRing
from deployments.ingress.ratelimit import Limiter, storage_url
from tests.fakes import FakeStorage, FakeUpscaler

KEY = "ready-check-key-0123456789"


def allowed(limiter: Limiter, identity: str, times: int) -> list[bool]:
    async def hits() -> list[bool]:
        return [bool((d := await limiter.hit(identity)) and d.allowed) for _ in range(times)]

    return asyncio.run(hits())


def at_once(limiters: list[Limiter], identity: str, times: int) -> int:
    """``times`` requests at once, spread over ``limiters`` (replicas); how many were let in."""

    async def hits() -> int:
        decisions = await asyncio.gather(*(limiters[i % len(limiters)].hit(identity) for i in range(times)))
        return sum(bool(d and d.allowed) for d in decisions)

    return asyncio.run(hits())


def test_in_memory_each_replica_counts_alone() -> None:
    one, two = Limiter("2/minute"), Limiter("2/minute")
    assert allowed(one, "key:a", 3) == [True, True, False]
    assert allowed(two, "key:a", 1) == [True]


def test_in_memory_thirty_two_at_once_let_exactly_ten_in() -> None:
    limiter = Limiter("10/minute")
    assert at_once([limiter], "key:burst", 32) == 10
    with ThreadPoolExecutor(8) as pool:  # from threads too: the library's lock holds
        assert sum(bool(d and d.allowed) for d in pool.map(limiter.hit_now, ["key:threads"] * 32)) == 10


@pytest.mark.parametrize("replicas", [1, 2])
def test_through_redis_thirty_two_at_once_let_exactly_ten_in(redis_url: str, replicas: int) -> None:
    limiters = [Limiter("10/minute", redis_url) for _ in range(replicas)]
    assert at_once(limiters, f"key:burst-{replicas}", 32) == 10


def test_through_redis_every_replica_shares_the_count(redis_url: str) -> None:
    one, two = Limiter("3/minute", redis_url), Limiter("3/minute", redis_url)
    assert allowed(one, "key:shared", 2) == [True, True]
    assert allowed(two, "key:shared", 2) == [True, False]
    assert allowed(one, "key:other", 1) == [True]


def test_a_burst_refused_by_the_short_window_does_not_spend_the_long_one() -> None:
    limiter = Limiter("5/hour;2/minute")
    assert allowed(limiter, "key:b", 4) == [True, True, False, False]
    long_window = next(item for item in limiter.items if item.get_expiry() == 3600)
    remaining = limiter.strategy.get_window_stats(long_window, "visioncloud", "key:b").remaining
    assert remaining == 3  # the two refused requests were not counted against the hour


def test_the_tightest_limit_is_reported() -> None:
    decision = asyncio.run(Limiter("10/second;2/minute").hit("key:x"))
    assert decision is not None and (decision.limit, decision.remaining, decision.window_s) == (2, 1, 60)


def test_asking_for_the_refusal_counts_nothing() -> None:
    limiter = Limiter("1/minute")
    assert [asyncio.run(limiter.refusal("key:p")) for _ in range(3)] == [None, None, None]
    assert allowed(limiter, "key:p", 2) == [True, False]
    refused = asyncio.run(limiter.refusal("key:p"))
    assert refused is not None and not refused.allowed and 1 <= refused.reset_s <= 60


def test_an_unreachable_store_lets_requests_in() -> None:
    (port,) = free_ports(1)
    assert asyncio.run(Limiter("1/minute", f"redis://127.0.0.1:{port}/0").hit("key:a")) is None


def test_the_store_is_explicit_else_the_brokers_redis_else_memory(tmp_path: Path) -> None:
    assert storage_url(load_settings()) == "memory://"
    assert storage_url(load_settings(rate_limit_storage_url="redis://cache:6379/1")) == "redis://cache:6379/1"
    assert storage_url(load_settings(jobs_broker_url="redis://broker:6379/0")) == "redis://broker:6379/0"
    embedded = load_settings(jobs_dir=tmp_path)
    assert storage_url(embedded, embedded_broker=True) == f"redis+unix://{tmp_path.resolve()}/redis.sock"


def test_the_embedded_brokers_redis_holds_one_count_for_every_replica(tmp_path: Path) -> None:
    settings = load_settings(jobs_dir=tmp_path)
    redis = EmbeddedRedis(settings.jobs_dir, settings.embedded_broker_socket)
    redis.start()
    try:
        url = storage_url(settings, embedded_broker=True)
        assert at_once([Limiter("10/minute", url), Limiter("10/minute", url)], "key:service", 32) == 10
    finally:
        redis.stop()


def _health(limits_url: str) -> tuple[int, dict[str, Any]]:
    flow = Flow(FakeUpscaler(), FakeStorage(), load_settings(rate_limit="10/minute", health_cache_s=0))
    app = create_api(flow, flow.settings, keys=KeyRing.from_keys([KEY]), limits_url=limits_url)
    with TestClient(app) as client:
        response = client.get("/api/health", headers={"X-API-Key": KEY})
    return response.status_code, response.json()


def test_the_service_is_not_ready_while_the_rate_limits_counter_store_does_not_answer() -> None:
    """The limiter lets requests in while its store fails (it must not take the service down), so health
    says unhealthy until the store answers: a replica that called itself healthy before the embedded
    broker's Redis was up let 11 of 32 uploads past 10/minute (bench.hostile)."""
    (port,) = free_ports(1)
    status, body = _health(f"redis://127.0.0.1:{port}/0")  # nothing listens there
    assert status == 503 and body["reasons"] == ["the rate limits' counter store does not answer"]


def test_the_service_is_ready_once_the_counter_store_answers(redis_url: str) -> None:
    assert _health(redis_url) == (200, {"status": "healthy"})
