"""The ingress deployment: HTTP in, handles to the upscaler and storage out. Cheap; scales on CPU."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from ray import serve

from configs.settings import Settings
from deployments.ingress.api import create_api
from deployments.ingress.pipeline import Pipeline


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=32)
@serve.ingress()
class Ingress:
    def __init__(self, upscaler: Any, storage: Any, settings: Settings) -> None:
        self.settings = settings
        self.pipeline = Pipeline(upscaler, storage, settings)

    def __serve_build_asgi_app__(self) -> FastAPI:
        # Built in the replica, after __init__, so the app is configured from this replica's settings.
        return create_api(self.pipeline, self.settings)
