"""The HTTP API: the app, its routes for single images, and the one place errors become JSON responses."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray import serve
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from configs.settings import Settings
from deployments.contracts.errors import EmptyUploadError, InternalError, MissingFieldError, ServiceError
from deployments.contracts.handles import JobsHandle
from deployments.contracts.values import ModelSummary
from deployments.flow.flow import Flow, Upload
from deployments.flow.recent import Recent
from deployments.ingress.access import AccessControl, AccessControlConfig, access_config
from deployments.ingress.api_keys import KeyRing, request_key_id
from deployments.ingress.errors import UnhealthyError, documented_errors, error_body, service_error
from deployments.ingress.limits import BodyDeadline, ConcurrentUploadLimit, DeclaredLengthLimit
from deployments.ingress.metrics import IngressMetrics
from deployments.ingress.multipart import allow_long_part_headers, keep_file_parts_in_memory
from deployments.ingress.ratelimit import storage_url
from deployments.ingress.schemas import ErrorResponse, HealthResponse, UploadResponse
from deployments.ingress.stats import Stats
from deployments.ingress.web import PageHeaders, download_url, mount_web, web_router

log = logging.getLogger("ray.serve")

ERRORS = documented_errors(ErrorResponse)
# What any route may answer at the door (``AccessControl``): no or a wrong key, a rate limit.
DOOR_ERRORS: dict[int | str, dict[str, Any]] = {status: ERRORS[status] for status in (401, 429)}


def request_id() -> str:
    """Serve's own request id: its proxy returns it as ``X-Request-ID`` (honouring one the client
    sent) and its replica logs carry it, so one id finds a request everywhere."""
    return serve.context._get_serve_request_context().request_id or uuid.uuid4().hex


class Responder:
    """Turns any named error into its JSON response and counts it: the one place that does."""

    def __init__(self, metrics: IngressMetrics) -> None:
        self.metrics = metrics

    def __call__(self, exc: ServiceError) -> JSONResponse:
        if exc.status < 500:
            self.metrics.rejected(exc.code)
        else:
            log.error("%s: %s", exc.code, exc.message)
        body = error_body(exc.message, exc.code, request_id(), **exc.details())
        return JSONResponse(body, status_code=exc.status, headers=exc.headers() or None)


def _install_error_handlers(app: FastAPI, respond: Responder, settings: Settings) -> None:
    """Every exception a route raises is answered through the one lookup (``service_error``)."""

    async def answer(request: Request, exc: Exception) -> JSONResponse:
        error = service_error(exc, settings.max_upload_bytes)
        if isinstance(error, InternalError):
            log.exception("unexpected error", exc_info=exc)
        return respond(error)

    for raised in (ServiceError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(raised, answer)


def images_router(flow: Flow, metrics: IngressMetrics, settings: Settings, stats: Stats) -> APIRouter:
    router = APIRouter()
    probe = Recent(lambda: asyncio.gather(flow.unavailable_reasons(), flow.spool_status()), settings.health_cache_s)

    @router.post("/api/images/upload", response_model=UploadResponse, responses=ERRORS)
    async def upload(
        request: Request,
        image: UploadFile | None = File(None, description="The image: JPEG, PNG or WebP"),
        model: str | None = Form(None, description="A model from GET /api/models (default: the service's)"),
        output_format: str | None = Form(
            None, alias="format", description="Output format of an upscaled image: png, webp or jpeg"
        ),
    ) -> UploadResponse:
        """Score the image; store it as is (good quality) or upscaled (or the original, if that fails)."""
        started = time.perf_counter()
        if image is None:
            raise MissingFieldError()
        data = await image.read()
        if not data:
            raise EmptyUploadError()
        rid = request_id()
        owner = request_key_id(request)  # what it stores belongs to the caller's key
        outcome = await flow.process(Upload(data, image.filename, rid, model or None, output_format or None, owner))
        seconds = time.perf_counter() - started
        metrics.upload(outcome.folder, outcome.status, outcome.quality_score, seconds)
        metrics.quality(outcome.quality_metrics, outcome.route, outcome.model)
        stats.record(outcome.folder, outcome.status, outcome.quality_score, seconds)
        return UploadResponse.of(outcome, rid, await download_url(flow.storage, settings, outcome.stored.key, owner))

    @router.get("/api/models", response_model=list[ModelSummary])
    async def list_models() -> list[ModelSummary]:
        """The models an upload may name, with their scales, sizes and measured PSNR-Y."""
        return await flow.models()

    @router.get("/api/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
    async def health() -> JSONResponse:
        """200 when the model is loaded and uploads can be stored (in the bucket, or in the spool while the
        bucket is unreachable and the spool has room); 503 with the reasons otherwise. A probe is reused
        for ``HEALTH_CACHE_S`` by every caller, so a flood of health checks costs one probe per window."""
        reasons, spool = await probe.get()
        extra = {"spool": dataclasses.asdict(spool)} if spool else {}
        if reasons:
            return JSONResponse(
                {"status": "unhealthy", "reasons": reasons, **extra}, status_code=UnhealthyError(reasons).status
            )
        return JSONResponse({"status": "healthy", **extra})

    return router


class UploadAPI(FastAPI):
    respond: Responder
    access: AccessControlConfig

    def build_middleware_stack(self) -> ASGIApp:
        # Outermost first: CORS (so a browser can read every refusal), the page's headers, keys and rate
        # limits, uploads at once (per replica and per client), the body's deadline, the declared-length
        # limit; none of them reads the body before deciding.
        assert self.max_body_size is not None
        access = self.access
        app: ASGIApp = DeclaredLengthLimit(super().build_middleware_stack(), self.max_body_size, self.respond)
        app = BodyDeadline(app, access.body_timeout_s, self.respond)
        app = ConcurrentUploadLimit(
            app, access.max_concurrent_uploads, self.respond, access.max_uploads_per_client, access.clients
        )
        app = AccessControl(app, access.key_check, access.limiter, self.respond, access.open_paths, access.clients)
        app = PageHeaders(app)
        if not access.cors_origins:
            return app
        return CORSMiddleware(
            app,
            allow_origins=access.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["X-API-Key", "Content-Type", "X-Request-ID"],
            expose_headers=["Retry-After", "X-Request-ID", *RATE_LIMIT_HEADERS],
        )


RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy")


def create_api(
    flow: Flow,
    settings: Settings,
    routers: list[APIRouter] | None = None,
    keys: KeyRing | None = None,
    web_dir: Path | None = None,
    jobs: JobsHandle | None = None,
    limits_url: str | None = None,
) -> FastAPI:
    """The ingress app. ``keys`` are the hashed API keys (the builder makes them from the settings, so
    plain keys never reach a replica); none: the API is open. The web UI's routes (``/api/stats`` reads
    ``jobs`` for queue depth and finished job items) come before any extra ``routers``, and the page
    itself (static files from ``web_dir``) is served at ``/`` after every route. ``limits_url`` is where the
    rate-limit and key-failure counters live (the Ingress passes ``ratelimit.storage_url``, the embedded
    broker's socket included; default: the settings' explicit store or broker, else this process's memory)."""
    allow_long_part_headers()
    keep_file_parts_in_memory(settings.max_upload_bytes)
    metrics = IngressMetrics()
    app = UploadAPI(
        title="VisionCloud Upscaler",
        summary="Uploads are scored; low-resolution images are upscaled by a neural network and stored in S3.",
        version="0.2.0",
        # Serve has no body limit: FastAPI answers 413 on a Content-Length over it without reading the
        # body, and stops reading a chunked body at the limit.
        max_body_size=settings.max_upload_bytes,
        responses=DOOR_ERRORS,
    )
    app.respond = Responder(metrics)
    app.access = access_config(settings, keys, web_dir, limits_url or storage_url(settings))
    stats = Stats()
    app.include_router(images_router(flow, metrics, settings, stats))
    app.include_router(web_router(flow.storage, settings, stats, jobs))
    for router in routers or []:
        app.include_router(router)
    _install_error_handlers(app, app.respond, settings)
    if web_dir is not None:
        mount_web(app, web_dir)
    return app
