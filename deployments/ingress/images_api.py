"""The single-image routes: upload (the seed's route), the models an upload may name, and health."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse

from configs import formats
from configs.settings import Settings
from deployments.contracts.errors import EmptyUploadError
from deployments.contracts.values import ModelSummary, SpoolStatus
from deployments.flow.flow import Flow, Upload
from deployments.flow.recent import Recent
from deployments.ingress.api_keys import request_key_id
from deployments.ingress.downloads import Downloads
from deployments.ingress.errors import UnhealthyError
from deployments.ingress.idempotency import IDEMPOTENCY_KEY, Idempotency, fingerprint
from deployments.ingress.metrics import IngressMetrics
from deployments.ingress.responder import request_id
from deployments.ingress.schemas import SUBMIT_ERRORS, HealthResponse, UploadResponse
from deployments.ingress.shared_stats import StatsBook


def images_router(
    flow: Flow, metrics: IngressMetrics, stats: StatsBook, downloads: Downloads, once: Idempotency
) -> APIRouter:
    router = APIRouter()

    @router.post("/api/images/upload", response_model=UploadResponse, responses=SUBMIT_ERRORS)
    async def upload(
        request: Request,
        image: UploadFile = File(description=f"The image: {formats.inputs_text()}"),
        model: str | None = Form(None, description="A model from GET /api/models (default: the service's)"),
        output_format: str | None = Form(
            None, alias="format", description=f"Output format of an upscaled image: {formats.outputs_text()}"
        ),
        idempotency_key: str | None = IDEMPOTENCY_KEY,
    ) -> JSONResponse:
        """Score the image; store it as is (good quality) or upscaled (or the original, if that fails).
        With an ``Idempotency-Key``, the same key and body within a day answer the same result."""

        async def run() -> JSONResponse:
            started = time.perf_counter()
            data = await image.read()
            if not data:
                raise EmptyUploadError()
            rid = request_id()
            owner = request_key_id(request)  # what it stores belongs to the caller's key
            upload = Upload(data, image.filename, rid, model or None, output_format or None, owner)
            outcome = await flow.process(upload)
            seconds = time.perf_counter() - started
            metrics.upload(outcome.folder, outcome.status, outcome.quality_score, seconds)
            metrics.quality(outcome.quality_metrics, outcome.route, outcome.model)
            await stats.record(outcome.folder, outcome.status, outcome.quality_score, seconds)
            answer = UploadResponse.of(outcome, rid, await downloads.url(outcome.stored.key, owner))
            return JSONResponse(answer.model_dump(mode="json"))

        fields = {"model": model, "format": output_format}
        return await once.answer(request, lambda: fingerprint("upload", fields, [image]), run)

    @router.get("/api/models", response_model=list[ModelSummary])
    async def list_models() -> list[ModelSummary]:
        """The models an upload may name, with their scales, sizes and measured PSNR-Y."""
        return await flow.models()

    return router


def health_router(
    flow: Flow, settings: Settings, limits_down: Callable[[], Awaitable[list[str]]] | None = None
) -> APIRouter:
    """``limits_down`` gives the reasons the rate limits cannot be enforced now (their counter store
    does not answer): the replica is not ready then, since the limiter would let every request in."""
    router = APIRouter()

    async def reasons_and_spool() -> tuple[list[str], SpoolStatus | None]:
        reasons, spool, limits = await asyncio.gather(
            flow.unavailable_reasons(), flow.spool_status(), limits_down() if limits_down else _none()
        )
        return [*reasons, *limits], spool

    probe = Recent(reasons_and_spool, settings.health_cache_s)

    @router.get("/api/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
    async def health() -> JSONResponse:
        """200 when the model is loaded and uploads can be stored (in the bucket, or in the spool while the
        bucket is unreachable and the spool has room); 503 with the reasons otherwise. A probe is reused
        for ``HEALTH_CACHE_S`` by every caller, so a flood of health checks costs one probe per window."""
        reasons, spool = await probe.get()
        extra = {"spool": dataclasses.asdict(spool)} if spool else {}
        if reasons:
            status = UnhealthyError(reasons).status
            return JSONResponse({"status": "unhealthy", "reasons": reasons, **extra}, status_code=status)
        return JSONResponse({"status": "healthy", **extra})

    return router


async def _none() -> list[str]:
    return []
