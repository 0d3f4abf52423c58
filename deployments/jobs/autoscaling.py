"""The jobs consumer's queue-length autoscaling policy, with the broker URL from the service's settings.

Ray's ``AsyncInferenceAutoscalingPolicy`` reads the queue's length from the broker named in its
``policy_kwargs``: text in the Serve config, where a password does not belong (the KubeRay manifest's
``serveConfigV2`` is a plain string in the RayService). Without one, against a Redis that requires one,
the policy only logs a warning at every poll and never scales on the queue. This policy is Ray's with
the URL the consumers and producers use, ``Settings.jobs_broker()``: ``JOBS_BROKER_URL`` (KubeRay sets
it from the ``upscaler-redis`` Secret), or with none the embedded broker's unix socket, which the
controller reaches when it runs on the same machine (one host; a cluster must set the URL).

Serve instantiates a class-based policy in its controller (``policy_kwargs`` become the keyword
arguments), so the variable must be in the controller's environment: on KubeRay, the head pod's.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ray.serve._private.broker import Broker
from ray.serve.async_inference_autoscaling_policy import (
    DEFAULT_ASYNC_INFERENCE_QUEUE_POLL_INTERVAL_S,
    AsyncInferenceAutoscalingPolicy,
)

from configs.settings import Settings, load_settings


class JobsQueuePolicy(AsyncInferenceAutoscalingPolicy):
    """Ray's queue-length policy on the queue ``queue_name`` of the service's jobs broker."""

    def __init__(
        self,
        queue_name: str,
        poll_interval_s: float = DEFAULT_ASYNC_INFERENCE_QUEUE_POLL_INTERVAL_S,
        settings: Settings | None = None,
    ) -> None:
        url = (settings or load_settings()).jobs_broker()
        super().__init__(broker_url=url, queue_name=queue_name, poll_interval_s=poll_interval_s)

    def _ensure_broker(self) -> None:
        """Ray's broker client refuses ``rediss://`` without TLS options (it raises on every tick): give
        it redis-py's defaults, which verify the server's certificate as Celery's own connection does."""
        if self._broker is None and urlsplit(self._broker_url).scheme == "rediss":
            self._broker = Broker(self._broker_url, broker_use_ssl={})  # type: ignore[no-untyped-call]
        super()._ensure_broker()
