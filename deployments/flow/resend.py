"""Sending a call again when the replica that had it died (Serve replaces it in ~10 s): tenacity's
policies for the flow's two calls that are safe to repeat, the upscale (pure) and the put
(create-only, idempotent). Each failure before a resend is logged with the request id."""

from __future__ import annotations

import logging

from ray.exceptions import RayActorError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError, ReplicaUnavailableError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_before_delay,
    wait_exponential,
    wait_fixed,
)
from tenacity.wait import wait_base

log = logging.getLogger("ray.serve")

# A call that failed because of the replica, not the request: safe to send again when it is idempotent.
REPLICA_FAILURES = (RayActorError, ReplicaUnavailableError, DeploymentUnavailableError, BackPressureError)
# An upscale is resent only when its replica died; a full queue is answered 503 at once instead.
DEAD_REPLICA = (RayActorError, ReplicaUnavailableError)


def resending(
    request_id: str, deployment: str, on: tuple[type[BaseException], ...], wait: wait_base, within_s: float
) -> AsyncRetrying:
    """Attempts of one call: again after ``wait`` on the ``on`` failures while the next attempt would
    still start within ``within_s``; then the last failure is raised."""

    def log_resend(state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        log.warning("request %s: %s replica failed (%s); sending again", request_id, deployment, failure)

    return AsyncRetrying(
        retry=retry_if_exception_type(on),
        wait=wait,
        stop=stop_before_delay(within_s),
        before_sleep=log_resend,
        reraise=True,
    )


def upscale_attempts(request_id: str, within_s: float) -> AsyncRetrying:
    return resending(request_id, "upscaler", DEAD_REPLICA, wait_fixed(1.0), within_s)


def store_attempts(request_id: str, within_s: float) -> AsyncRetrying:
    """Backing off 0.25, 0.5, 1, then every 2 s."""
    return resending(request_id, "storage", REPLICA_FAILURES, wait_exponential(multiplier=0.25, max=2.0), within_s)
