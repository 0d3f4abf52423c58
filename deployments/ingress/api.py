"""The HTTP API: routes, the body-size limit, and the one place errors become JSON responses."""

from __future__ import annotations

import hmac
import logging
import uuid
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray import serve
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from configs.settings import Settings
from deployments.contracts import ModelSummary, StorageError
from deployments.ingress.errors import (
    EmptyUploadError,
    MissingFieldError,
    UnauthorizedError,
    UploadRejectedError,
    UploadTooLargeError,
    error_body,
    status_of,
)
from deployments.ingress.limits import DeclaredLengthLimit
from deployments.ingress.multipart import allow_long_part_headers
from deployments.ingress.pipeline import Pipeline
from deployments.ingress.schemas import ErrorResponse, HealthResponse, UploadResponse

log = logging.getLogger("ray.serve")

REJECTIONS: dict[int | str, dict[str, Any]] = {
    int(s): {"model": ErrorResponse, "description": d}
    for s, d in [
        (HTTPStatus.BAD_REQUEST, "Missing field or empty file"),
        (HTTPStatus.UNAUTHORIZED, "API key required (when API_KEY is set)"),
        (HTTPStatus.NOT_FOUND, "Unknown model name (the message lists the valid ones)"),
        (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Body over MAX_UPLOAD_BYTES, or too many pixels"),
        (HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "Not a JPEG, PNG or WebP still image"),
        (HTTPStatus.UNPROCESSABLE_ENTITY, "Damaged or truncated image, or an unknown output format"),
        (HTTPStatus.SERVICE_UNAVAILABLE, "Storage unavailable; nothing was stored"),
    ]
}


def _request_id(request: Request) -> str:
    """Serve's own request id: its proxy returns it as ``X-Request-ID`` (honouring one the client
    sent) and its replica logs carry it, so one id finds a request everywhere."""
    rid: str | None = getattr(request.state, "request_id", None)
    if not rid:
        rid = serve.context._get_serve_request_context().request_id or uuid.uuid4().hex
        request.state.request_id = rid
    return rid


def _install_error_handlers(app: FastAPI, pipeline: Pipeline, settings: Settings) -> None:
    def respond(request: Request, status: int, message: str, code: str) -> JSONResponse:
        rid = _request_id(request)
        return JSONResponse(error_body(message, code, rid), status_code=status)

    @app.exception_handler(UploadRejectedError)
    async def rejected(request: Request, exc: UploadRejectedError) -> JSONResponse:
        pipeline.metrics.rejected(exc.code)
        return respond(request, status_of(exc), exc.message, exc.code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        error = MissingFieldError()
        pipeline.metrics.rejected(error.code)
        return respond(request, HTTPStatus.BAD_REQUEST, error.message, error.code)

    @app.exception_handler(StorageError)
    async def storage_down(request: Request, exc: StorageError) -> JSONResponse:
        log.error("storage failed: %s", exc)
        return respond(
            request,
            HTTPStatus.SERVICE_UNAVAILABLE,
            f"Storage is unavailable, nothing was stored; retry later ({exc}).",
            "storage_unavailable",
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:  # FastAPI's body limit, before reading it all
            too_large = UploadTooLargeError(settings.max_upload_bytes)
            pipeline.metrics.rejected(too_large.code)
            return respond(request, exc.status_code, too_large.message, too_large.code)
        return respond(
            request, exc.status_code, str(exc.detail), HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return respond(
            request,
            HTTPStatus.INTERNAL_SERVER_ERROR,
            f"Internal error ({type(exc).__name__}); nothing was stored.",
            "internal_error",
        )


class UploadAPI(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        assert self.max_body_size is not None
        return DeclaredLengthLimit(super().build_middleware_stack(), self.max_body_size)


def create_api(pipeline: Pipeline, settings: Settings) -> FastAPI:
    allow_long_part_headers()
    app = UploadAPI(
        title="VisionCloud Upscaler",
        summary="Uploads are scored; low-resolution images are upscaled by a neural network and stored in S3.",
        version="0.1.0",
        # Serve has no body limit: FastAPI answers 413 on a Content-Length over it without reading the
        # body, and stops reading a chunked body at the limit.
        max_body_size=settings.max_upload_bytes,
    )

    @app.post("/api/images/upload", response_model=UploadResponse, responses=REJECTIONS)
    async def upload(
        request: Request,
        image: UploadFile | None = File(None, description="The image: JPEG, PNG or WebP"),
        model: str | None = Form(None, description="A model from GET /api/models (default: the service's)"),
        output_format: str | None = Form(
            None, alias="format", description="Output format of an upscaled image: png, webp or jpeg"
        ),
    ) -> UploadResponse:
        """Score the image; store it as is (good quality) or upscaled (or the original, if that fails)."""
        rid = _request_id(request)
        if settings.api_key and not hmac.compare_digest(
            request.headers.get("x-api-key", "").encode(), settings.api_key.encode()
        ):
            raise UnauthorizedError()
        if image is None:
            raise MissingFieldError()
        data = await image.read()
        if not data:
            raise EmptyUploadError()
        return await pipeline.process(data, image.filename, rid, model or None, output_format or None)

    @app.get("/api/models", response_model=list[ModelSummary])
    async def list_models() -> list[ModelSummary]:
        """The models an upload may name, with their scales, sizes and measured PSNR-Y."""
        return await pipeline.models()

    @app.get("/api/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
    async def health() -> JSONResponse:
        """200 when the model is loaded and storage is writable; 503 with the reasons otherwise."""
        reasons = await pipeline.unavailable_reasons()
        if reasons:
            return JSONResponse({"status": "unhealthy", "reasons": reasons}, status_code=503)
        return JSONResponse({"status": "healthy"})

    _install_error_handlers(app, pipeline, settings)
    return app
