"""Rate limits: exact per identity, shared by every ingress replica through Redis (a real
redis-server on 127.0.0.1: the shared ``redis_url`` fixture), per replica in memory, and never the
reason the service fails."""

from __future__ import annotations

import asyncio

from bench.s3servers import free_ports
from configs.settings import load_settings
from deployments.ingress.ratelimit import Limiter, storage_url


def allowed(limiter: Limiter, identity: str, times: int) -> list[bool]:
    async def hits() -> list[bool]:
        return [bool((d := await limiter.hit(identity)) and d.allowed) for _ in range(times)]

    return asyncio.run(hits())


def test_in_memory_each_replica_counts_alone() -> None:
    one, two = Limiter("2/minute"), Limiter("2/minute")
    assert allowed(one, "key:a", 3) == [True, True, False]
    assert allowed(two, "key:a", 1) == [True]


def test_through_redis_every_replica_shares_the_count(redis_url: str) -> None:
    one, two = Limiter("3/minute", redis_url), Limiter("3/minute", redis_url)
    assert allowed(one, "key:shared", 2) == [True, True]
    assert allowed(two, "key:shared", 2) == [True, False]
    assert allowed(one, "key:other", 1) == [True]


def test_the_tightest_limit_is_reported() -> None:
    decision = asyncio.run(Limiter("10/second;2/minute").hit("key:x"))
    assert decision is not None and (decision.limit, decision.remaining, decision.window_s) == (2, 1, 60)


def test_an_unreachable_store_lets_requests_in() -> None:
    (port,) = free_ports(1)
    assert asyncio.run(Limiter("1/minute", f"redis://127.0.0.1:{port}/0").hit("key:a")) is None


def test_the_store_is_explicit_or_memory() -> None:
    assert storage_url(load_settings()) == "memory://"
    assert storage_url(load_settings(rate_limit_storage_url="redis://cache:6379/1")) == "redis://cache:6379/1"
