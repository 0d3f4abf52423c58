"""The ingress deployment: HTTP in, handles to the upscaler, storage and jobs out. Cheap; scales on CPU."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from ray import serve

from configs.settings import Settings
from deployments.contracts.handles import JobsHandle, StorageHandle, UpscalerHandle
from deployments.flow.flow import Flow
from deployments.ingress.api import create_api
from deployments.ingress.api_keys import KeyRing
from deployments.ingress.idempotency import idempotency
from deployments.ingress.jobs_api import jobs_router
from deployments.ingress.ratelimit import storage_url
from deployments.ingress.shared_redis import broker_redis_url, connect


# Uploads past MAX_CONCURRENT_UPLOADS (24) get our 503 at once, leaving 8 slots for health and the small
# routes; past 32 ongoing and 64 queued requests, Serve's proxy answers 503 with Retry-After itself
# (instead of queueing without bound into 408s). The Serve configs may set their own numbers.
@serve.deployment(
    ray_actor_options={"num_cpus": 0.25},
    max_ongoing_requests=32,
    max_queued_requests=64,
    backpressure_config={"status_code": 503, "retry_after_s": 5},
)
@serve.ingress()
class Ingress:
    def __init__(
        self,
        upscaler: UpscalerHandle,
        storage: StorageHandle,
        settings: Settings,
        jobs: JobsHandle,
        keys: KeyRing | None = None,
        web_dir: str | None = None,
        embedded_broker: bool = False,
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.flow = Flow(upscaler, storage, settings)
        self.jobs = jobs
        self.web_dir = Path(web_dir) if web_dir else None  # the web UI's static files, served at /
        # Rate-limit and key-failure counters live in the broker's Redis (the embedded broker's socket when
        # the builder deployed one) unless RATE_LIMIT_STORAGE_URL says otherwise: one count per service.
        self.limits_url = storage_url(settings, embedded_broker)
        # The /api/stats counters and the Idempotency-Keys live in the broker's Redis: one for every replica.
        self.shared_url = broker_redis_url(settings, embedded_broker)

    def __serve_build_asgi_app__(self) -> FastAPI:
        # Built in the replica, after __init__, so the app is configured from this replica's settings.
        shared = connect(self.shared_url) if self.shared_url else None
        routers = [jobs_router(self.flow, self.jobs, self.settings, idempotency(shared))]
        return create_api(
            self.flow, self.settings, routers, self.keys, self.web_dir, self.jobs, self.limits_url, shared
        )
