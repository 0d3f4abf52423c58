"""The jobs consumer's queue-length autoscaling policy, with the broker URL from the service's settings.

Ray's ``AsyncInferenceAutoscalingPolicy`` reads the queue's length from the broker named in its
``policy_kwargs``: text in the Serve config, where a password does not belong (the KubeRay manifest's
``serveConfigV2`` is a plain string in the RayService). Without one, against a Redis that requires one,
the policy only logs a warning at every poll and never scales on the queue. This policy is Ray's with
the URL taken from ``JOBS_BROKER_URL`` (KubeRay sets it from the ``upscaler-redis`` Secret), the URL
the consumers and producers already use, so the policy always watches the queue they share.

Serve instantiates a class-based policy in its controller (``policy_kwargs`` become the keyword
arguments), so the variable must be in the controller's environment: on KubeRay, the head pod's.
"""

from __future__ import annotations

from ray.serve.async_inference_autoscaling_policy import (
    DEFAULT_ASYNC_INFERENCE_QUEUE_POLL_INTERVAL_S,
    AsyncInferenceAutoscalingPolicy,
)

from configs.settings import Settings, SettingsError, load_settings


class JobsQueuePolicy(AsyncInferenceAutoscalingPolicy):
    """Ray's queue-length policy on the queue ``queue_name`` of the broker at ``JOBS_BROKER_URL``.

    Raises ``SettingsError`` when ``JOBS_BROKER_URL`` is unset: the embedded broker is per node, and a
    cluster's consumers need one Redis they all share."""

    def __init__(
        self,
        queue_name: str,
        poll_interval_s: float = DEFAULT_ASYNC_INFERENCE_QUEUE_POLL_INTERVAL_S,
        settings: Settings | None = None,
    ) -> None:
        settings = settings or load_settings()
        if settings.jobs_broker_url is None:
            raise SettingsError(
                "JOBS_BROKER_URL: unset, expected the redis:// URL of the jobs broker every node shares "
                "(the queue-length autoscaling policy reads its queue there)"
            )
        super().__init__(
            broker_url=settings.jobs_broker_url.get_secret_value(),
            queue_name=queue_name,
            poll_interval_s=poll_interval_s,
        )
