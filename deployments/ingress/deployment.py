"""The ingress deployment: HTTP in, handles to the upscaler, storage and jobs out. Cheap; scales on CPU."""

from __future__ import annotations

from fastapi import FastAPI
from ray import serve

from configs.settings import Settings
from deployments.contracts import JobsHandle, StorageHandle, UpscalerHandle
from deployments.flow import Flow
from deployments.ingress.api import create_api
from deployments.ingress.jobs_api import jobs_router


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=32)
@serve.ingress()
class Ingress:
    def __init__(self, upscaler: UpscalerHandle, storage: StorageHandle, settings: Settings, jobs: JobsHandle) -> None:
        self.settings = settings
        self.flow = Flow(upscaler, storage, settings)
        self.jobs = jobs

    def __serve_build_asgi_app__(self) -> FastAPI:
        # Built in the replica, after __init__, so the app is configured from this replica's settings.
        return create_api(self.flow, self.settings, [jobs_router(self.flow, self.jobs, self.settings)])
