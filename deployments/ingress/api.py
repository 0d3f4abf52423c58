"""The HTTP API: the app, its routes for single images, and the one place errors become JSON responses."""

from __future__ import annotations

import hmac
import logging
import time
import uuid
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray import serve
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from configs.settings import Settings
from deployments.contracts import ModelSummary
from deployments.errors import (
    EmptyUploadError,
    InvalidImagesError,
    MissingFieldError,
    ServiceError,
    UnauthorizedError,
    UploadTooLargeError,
)
from deployments.flow import Flow, Upload
from deployments.ingress.errors import documented_errors, error_body, status_of
from deployments.ingress.limits import DeclaredLengthLimit
from deployments.ingress.metrics import IngressMetrics
from deployments.ingress.multipart import allow_long_part_headers
from deployments.ingress.schemas import ErrorResponse, HealthResponse, UploadResponse

log = logging.getLogger("ray.serve")

ERRORS = documented_errors(ErrorResponse)


def request_id() -> str:
    """Serve's own request id: its proxy returns it as ``X-Request-ID`` (honouring one the client
    sent) and its replica logs carry it, so one id finds a request everywhere."""
    return serve.context._get_serve_request_context().request_id or uuid.uuid4().hex


class Responder:
    """Turns any named error into its JSON response and counts it: the one place that does."""

    def __init__(self, metrics: IngressMetrics) -> None:
        self.metrics = metrics

    def __call__(self, exc: ServiceError, status: int | None = None) -> JSONResponse:
        status = status or status_of(exc)
        if status < 500:
            self.metrics.rejected(exc.code)
        else:
            log.error("%s: %s", exc.code, exc.message)
        extra: dict[str, Any] = {}
        if isinstance(exc, InvalidImagesError):
            extra["files"] = [
                {"index": i, "filename": name, "error": e.code, "message": e.message} for i, name, e in exc.failures
            ]
        return JSONResponse(error_body(exc.message, exc.code, request_id(), **extra), status_code=status)


def check_api_key(request: Request, settings: Settings) -> None:
    if settings.api_key and not hmac.compare_digest(
        request.headers.get("x-api-key", "").encode(), settings.api_key.encode()
    ):
        raise UnauthorizedError()


def _install_error_handlers(app: FastAPI, respond: Responder, settings: Settings) -> None:
    @app.exception_handler(ServiceError)
    async def named(request: Request, exc: ServiceError) -> JSONResponse:
        return respond(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        bad = [e for e in exc.errors() if e.get("loc", ("body",))[0] in ("query", "path")]
        if not bad:  # a missing or mistyped multipart body
            return respond(MissingFieldError())
        error = ServiceError("; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in bad))
        error.code = "invalid_parameter"
        return respond(error, HTTPStatus.UNPROCESSABLE_ENTITY)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:  # FastAPI's body limit, before reading it all
            return respond(UploadTooLargeError(settings.max_upload_bytes))
        error = ServiceError(str(exc.detail))
        error.code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
        return respond(error, exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        error = ServiceError(f"Internal error ({type(exc).__name__}); nothing was stored.")
        error.code = "internal_error"
        return respond(error, HTTPStatus.INTERNAL_SERVER_ERROR)


def images_router(flow: Flow, metrics: IngressMetrics, settings: Settings) -> APIRouter:
    router = APIRouter()

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
        check_api_key(request, settings)
        if image is None:
            raise MissingFieldError()
        data = await image.read()
        if not data:
            raise EmptyUploadError()
        rid = request_id()
        outcome = await flow.process(Upload(data, image.filename, rid, model or None, output_format or None))
        metrics.upload(outcome.folder, outcome.status, outcome.quality_score, time.perf_counter() - started)
        metrics.quality(outcome.quality_metrics, outcome.route, outcome.model)
        return UploadResponse.of(outcome, rid)

    @router.get("/api/models", response_model=list[ModelSummary])
    async def list_models() -> list[ModelSummary]:
        """The models an upload may name, with their scales, sizes and measured PSNR-Y."""
        return await flow.models()

    @router.get("/api/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
    async def health() -> JSONResponse:
        """200 when the model is loaded and storage is writable; 503 with the reasons otherwise."""
        reasons = await flow.unavailable_reasons()
        if reasons:
            return JSONResponse({"status": "unhealthy", "reasons": reasons}, status_code=503)
        return JSONResponse({"status": "healthy"})

    return router


class UploadAPI(FastAPI):
    respond: Responder

    def build_middleware_stack(self) -> ASGIApp:
        assert self.max_body_size is not None
        return DeclaredLengthLimit(super().build_middleware_stack(), self.max_body_size, self.respond)


def create_api(flow: Flow, settings: Settings, routers: list[APIRouter] | None = None) -> FastAPI:
    allow_long_part_headers()
    metrics = IngressMetrics()
    app = UploadAPI(
        title="VisionCloud Upscaler",
        summary="Uploads are scored; low-resolution images are upscaled by a neural network and stored in S3.",
        version="0.2.0",
        # Serve has no body limit: FastAPI answers 413 on a Content-Length over it without reading the
        # body, and stops reading a chunked body at the limit.
        max_body_size=settings.max_upload_bytes,
    )
    app.respond = Responder(metrics)
    app.include_router(images_router(flow, metrics, settings))
    for router in routers or []:
        app.include_router(router)
    _install_error_handlers(app, app.respond, settings)
    return app
