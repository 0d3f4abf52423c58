"""The embedded broker deployment: owns the Redis that queues jobs when ``JOBS_BROKER_URL`` is unset.

One replica on the node that holds ``JOBS_DIR``; Serve restarts it if its health check fails, and the
Redis it starts reloads its append-only file. Clusters set ``JOBS_BROKER_URL`` and never deploy it.
"""

from __future__ import annotations

from ray import serve

from configs.settings import Settings
from deployments.broker.redis_server import EmbeddedRedis


@serve.deployment(ray_actor_options={"num_cpus": 0.05}, num_replicas=1, max_ongoing_requests=8)
class EmbeddedBroker:
    def __init__(self, settings: Settings) -> None:
        self.redis = EmbeddedRedis(settings.jobs_dir, settings.embedded_broker_socket)
        self.redis.start()

    def check_health(self) -> None:
        if not self.redis.ping():
            raise RuntimeError("the embedded Redis does not answer")

    def __del__(self) -> None:
        self.redis.stop()
