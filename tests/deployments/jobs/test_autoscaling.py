"""The jobs consumer scales on the length of the queue it consumes, on a Redis that requires a password:
the policy takes the broker's URL, password included, from JOBS_BROKER_URL (the Secret on KubeRay),
never from the Serve config's text."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis
from ray.serve._private.common import DeploymentID
from ray.serve.config import AutoscalingConfig, AutoscalingContext

from configs.settings import load_settings
from deployments.broker.redis_server import EmbeddedRedis
from deployments.jobs.autoscaling import JobsQueuePolicy
from deployments.jobs.deployment import QUEUE
from tests.redis_server import redis_server

PASSWORD = "s3cret-broker-password"
QUEUED = 40


def context(replicas: int, target_ongoing: int = 8) -> AutoscalingContext:
    """What Serve's controller hands a policy: ``replicas`` running, no HTTP requests in flight."""
    return AutoscalingContext(
        deployment_id=DeploymentID(name="JobsConsumer", app_name="upscaler"),
        deployment_name="JobsConsumer",
        app_name="upscaler",
        current_num_replicas=replicas,
        target_num_replicas=replicas,
        running_replicas=[],
        total_num_requests=0.0,
        total_queued_requests=0.0,
        aggregated_metrics={},
        raw_metrics={},
        capacity_adjusted_min_replicas=1,
        capacity_adjusted_max_replicas=16,
        policy_state={},
        last_scale_up_time=None,
        last_scale_down_time=None,
        current_time=None,
        config=AutoscalingConfig(min_replicas=1, max_replicas=16, target_ongoing_requests=target_ongoing),
    )


async def decide(policy: JobsQueuePolicy, ctx: AutoscalingContext) -> tuple[Any, dict[str, Any]]:
    """Two controller ticks: the first starts the broker poll, the second decides on what it read."""
    policy(ctx)
    while policy._task is not None and not policy._task.done():
        await asyncio.sleep(0.01)
    decision: tuple[Any, dict[str, Any]] = policy(ctx)
    return decision


@pytest.fixture
def protected_redis(tmp_path: Path) -> Any:
    with redis_server(tmp_path, password=PASSWORD) as url:
        client = redis.Redis.from_url(url)
        client.rpush(QUEUE, *[f"task-{i}" for i in range(QUEUED)])
        yield url


def test_the_policy_scales_on_the_queue_of_the_password_protected_broker(
    protected_redis: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBS_BROKER_URL", protected_redis)
    policy = JobsQueuePolicy(queue_name=QUEUE, poll_interval_s=0.01)
    desired, state = asyncio.run(decide(policy, context(replicas=1)))
    assert state["queue_length"] == QUEUED
    assert desired == QUEUED / 8  # 40 queued items for 1 replica at 8 each: 5 replicas


def test_without_the_password_the_queue_is_invisible_which_is_what_the_old_config_did(protected_redis: str) -> None:
    """The URL the Serve config used to carry (no password): Ray's policy reads nothing and never scales."""
    no_password = protected_redis.replace(f":{PASSWORD}@", "")
    settings = load_settings(jobs_broker_url=no_password)
    policy = JobsQueuePolicy(queue_name=QUEUE, poll_interval_s=0.01, settings=settings)
    desired, state = asyncio.run(decide(policy, context(replicas=1)))
    assert (state["queue_length"], desired) == (0, 0)


def test_without_a_broker_url_it_watches_the_embedded_brokers_queue(tmp_path: Path) -> None:
    """One host, no JOBS_BROKER_URL: the queue is the embedded Redis's, on its unix socket."""
    settings = load_settings(jobs_broker_url=None, jobs_dir=tmp_path / "jobs")
    broker = EmbeddedRedis(settings.jobs_dir, settings.embedded_broker_socket)
    broker.start()
    try:
        broker.client().rpush(QUEUE, *[f"task-{i}" for i in range(QUEUED)])
        policy = JobsQueuePolicy(queue_name=QUEUE, poll_interval_s=0.01, settings=settings)
        desired, state = asyncio.run(decide(policy, context(replicas=2)))
        assert (state["queue_length"], desired) == (QUEUED, QUEUED / 8)
    finally:
        broker.stop()


def test_a_tls_broker_gets_a_client_instead_of_an_error_at_every_tick() -> None:
    settings = load_settings(jobs_broker_url="rediss://:pw@redis.example:6380/0")
    policy = JobsQueuePolicy(queue_name=QUEUE, settings=settings)
    policy._ensure_broker()  # Ray's own raises ValueError("rediss broker requires broker_use_ssl")
    assert policy._broker is not None
