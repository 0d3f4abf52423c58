"""``GET /api/limits``: the limits a client must stay within, as the service enforces them, so that the
command line and the web page size their jobs and pace their requests from the service's own figures
instead of guesses (a CLI that sent 16 files per job to a service with ``MAX_JOB_IMAGES=10`` had every
one refused).

Access: like ``/api/models``, it needs a key when keys are configured (shared/DESIGN.md: every route
but health and the page's files). The figures are not secret, but a client that has no key cannot
submit anything either, so it has no use for them; and keeping the open list as it is keeps one rule.
It counts against ``RATE_LIMIT`` like any keyed request: a client asks once per run.
"""

from __future__ import annotations

from fastapi import APIRouter
from limits import parse_many
from pydantic import BaseModel, Field

from configs.settings import Settings
from deployments.ingress.schemas import ERRORS


class RateWindow(BaseModel):
    amount: int = Field(description="Requests allowed in one window")
    period_s: int = Field(description="The window's length in seconds")


class LimitsResponse(BaseModel):
    """What one request, one job and one client may send (settings in brackets)."""

    max_upload_bytes: int = Field(
        description="Bytes of one request's whole body, an upload or a job (MAX_UPLOAD_BYTES)"
    )
    max_job_images: int = Field(description="Images in one POST /api/jobs (MAX_JOB_IMAGES)")
    max_job_bytes: int = Field(
        description="Bytes of one job's request body: the body limit, multipart framing included (MAX_UPLOAD_BYTES)"
    )
    max_uploads_per_client: int = Field(
        description="Uploads one client address may have in flight per ingress replica; more get 429 "
        "(MAX_UPLOADS_PER_CLIENT)"
    )
    max_concurrent_uploads: int = Field(
        description="Uploads one ingress replica takes at once; more get 503 (MAX_CONCURRENT_UPLOADS)"
    )
    rate_limit: str | None = Field(description="Requests per key, or per client address without keys (RATE_LIMIT)")
    rate_limits: list[RateWindow] = Field(description="RATE_LIMIT parsed, shortest window first; empty: no limit")
    max_image_pixels: int = Field(description="Pixels an image may declare; more is refused (MAX_IMAGE_PIXELS)")
    max_upscale_pixels: int = Field(
        description="Input pixels an image may have to be upscaled; larger ones are kept as they are "
        "(MAX_UPSCALE_PIXELS)"
    )


def service_limits(settings: Settings) -> LimitsResponse:
    windows = sorted(parse_many(settings.rate_limit), key=lambda i: i.get_expiry()) if settings.rate_limit else []
    return LimitsResponse(
        max_upload_bytes=settings.max_upload_bytes,
        max_job_images=settings.max_job_images,
        max_job_bytes=settings.max_upload_bytes,
        max_uploads_per_client=settings.max_uploads_per_client,
        max_concurrent_uploads=settings.max_concurrent_uploads,
        rate_limit=settings.rate_limit,
        rate_limits=[RateWindow(amount=w.amount, period_s=w.get_expiry()) for w in windows],
        max_image_pixels=settings.max_image_pixels,
        max_upscale_pixels=settings.max_upscale_pixels,
    )


def limits_router(settings: Settings) -> APIRouter:
    router = APIRouter()
    answer = service_limits(settings)  # settings are fixed for the replica's life: computed once

    @router.get("/api/limits", response_model=LimitsResponse, responses=ERRORS)
    async def limits() -> LimitsResponse:
        """The limits a client must stay within: request and job sizes, uploads in flight, the rate limit
        (as written and parsed) and image sizes. A client sizes its jobs by these and paces its requests;
        a refusal past them says which limit it met."""
        return answer

    return router
