"""The Redis every ingress replica shares: the jobs broker's (``JOBS_BROKER_URL``, or the embedded
broker's unix socket, which the app builder deploys whenever no broker URL is set).

The idempotency keys and the ``/api/stats`` counters live there, so any replica answers the same. There
is no Redis only where there is no broker: the in-process tests, which build the app without Serve; the
app builder always has one. A client is made per replica (``redis.asyncio``: no thread per call)."""

from __future__ import annotations

import redis.asyncio as aioredis

from configs.settings import Settings

NAMESPACE = "visioncloud"  # the prefix of every key the ingress writes (the rate limits use it too)


def broker_redis_url(settings: Settings, embedded_broker: bool = False) -> str | None:
    """The broker's Redis as ``redis-py`` spells it; ``None`` without a broker (in-process tests)."""
    if settings.jobs_broker_url is not None:  # redis:// or rediss:// (Settings checks)
        return settings.jobs_broker_url.get_secret_value()
    if embedded_broker:
        return f"unix://{settings.embedded_broker_socket}"
    return None


def connect(url: str) -> aioredis.Redis:
    """A client with short timeouts: a Redis that does not answer fails the call, it does not hang it."""
    client: aioredis.Redis = aioredis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    return client
