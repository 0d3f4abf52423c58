"""The ingress app: its middleware in order, its routers (one module each), and the exception handler
that answers every error through the one lookup."""

from __future__ import annotations

import logging
from http import HTTPStatus
from pathlib import Path

import redis.asyncio as aioredis
from fastapi import APIRouter, FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from configs.settings import Settings
from configs.version import VERSION
from deployments.contracts.errors import InternalError, ServiceError
from deployments.contracts.handles import JobsHandle
from deployments.flow.flow import Flow
from deployments.ingress.access import AccessControl, AccessControlConfig, access_config
from deployments.ingress.api_keys import KeyRing
from deployments.ingress.docs import add_docs
from deployments.ingress.downloads import Downloads
from deployments.ingress.errors import HTTPRefusal, service_error
from deployments.ingress.formats_api import formats_router
from deployments.ingress.idempotency import idempotency
from deployments.ingress.images_api import health_router, images_router
from deployments.ingress.limits import BodyDeadline, ConcurrentUploadLimit, DeclaredLengthLimit
from deployments.ingress.limits_api import limits_router
from deployments.ingress.methods import allowed_methods
from deployments.ingress.metrics import IngressMetrics
from deployments.ingress.multipart import allow_long_part_headers, keep_file_parts_in_memory
from deployments.ingress.objects_api import objects_router
from deployments.ingress.page import PageHeaders, mount_web
from deployments.ingress.ratelimit import storage_url
from deployments.ingress.responder import Responder
from deployments.ingress.schemas import DOOR_ERRORS
from deployments.ingress.shared_stats import stats_book
from deployments.ingress.stats_api import stats_router

log = logging.getLogger("ray.serve")


def _install_error_handlers(app: FastAPI, respond: Responder, settings: Settings) -> None:
    """Every exception a route raises is answered through the one lookup (``service_error``)."""

    async def answer(request: Request, exc: Exception) -> JSONResponse:
        error = service_error(exc, settings.max_upload_bytes)
        if isinstance(error, HTTPRefusal) and error.status == HTTPStatus.METHOD_NOT_ALLOWED:
            error = HTTPRefusal(error.status, error.message, {"Allow": allowed_methods(app.routes, request.scope)})
        if isinstance(error, InternalError):
            log.exception("unexpected error", exc_info=exc)
        return respond(error)

    for raised in (ServiceError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(raised, answer)


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
            allow_headers=["X-API-Key", "Content-Type", "X-Request-ID", "Idempotency-Key"],
            expose_headers=["Retry-After", "X-Request-ID", "Idempotent-Replayed", "Location", *RATE_LIMIT_HEADERS],
        )


# The X-API-Key scheme as OpenAPI declares it (components.securitySchemes, and ``security`` on every
# operation that needs a key). auto_error=False: the key is checked by ``AccessControl`` before the body is
# read, and a refusal keeps the service's own 401 body; this dependency only documents the scheme.
API_KEY = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ApiKey",
    description="One of the service's API keys (API_KEY, API_KEYS, API_KEYS_FILE); every route but health and the page",
    auto_error=False,
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
    shared: aioredis.Redis | None = None,
) -> FastAPI:
    """The ingress app. ``keys`` are the hashed API keys (the builder makes them from the settings, so
    plain keys never reach a replica); none: the API is open. The web UI's routes (``/api/stats`` reads
    ``jobs`` for queue depth and finished job items) come before any extra ``routers``, and the page
    itself (static files from ``web_dir``) is served at ``/`` after every route. ``limits_url`` is where the
    rate-limit and key-failure counters live (the Ingress passes ``ratelimit.storage_url``, the embedded
    broker's socket included; default: the settings' explicit store or broker, else this process's memory).
    ``shared`` is the broker's Redis, where the ``/api/stats`` counters and the Idempotency-Keys of every
    replica live (none: in this process, for the in-process app)."""
    allow_long_part_headers()
    keep_file_parts_in_memory(settings.max_upload_bytes)
    metrics = IngressMetrics()
    app = UploadAPI(
        title="VisionCloud Upscaler",
        summary="Uploads are scored; low-resolution images are upscaled by a neural network and stored in S3.",
        version=VERSION,
        # Serve has no body limit: FastAPI answers 413 on a Content-Length over it without reading the
        # body, and stops reading a chunked body at the limit.
        max_body_size=settings.max_upload_bytes,
        responses=DOOR_ERRORS,
        docs_url=None,  # add_docs serves /docs from this app, not from a CDN; no ReDoc (its logo is on a CDN)
        redoc_url=None,
    )
    app.respond = Responder(metrics)
    app.access = access_config(settings, keys, web_dir, limits_url or storage_url(settings))
    stats = stats_book(shared)
    protected = [Security(API_KEY)] if keys is not None else []  # documented only; AccessControl checks
    uploads = images_router(flow, metrics, stats, Downloads(flow.storage), idempotency(shared))
    app.include_router(uploads, dependencies=protected)
    app.include_router(health_router(flow, settings, app.access.unavailable_reasons))
    app.include_router(stats_router(flow.storage, settings, stats, jobs), dependencies=protected)
    app.include_router(limits_router(settings), dependencies=protected)
    app.include_router(objects_router(flow.storage), dependencies=protected)
    app.include_router(formats_router())
    for router in routers or []:
        app.include_router(router, dependencies=protected)
    add_docs(app)
    _install_error_handlers(app, app.respond, settings)
    if web_dir is not None:
        mount_web(app, web_dir)
    return app
