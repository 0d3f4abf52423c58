"""The JSON of one stored image: the original service's result schema, with extra fields, never fewer.

Shared by the upload route (``ingress/schemas.py``) and the jobs consumer (an item's ``result``, and
the webhook event built from it), so both doors answer with exactly the same object.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from deployments.contracts.values import Outcome


class UploadResult(BaseModel):
    original_key: str = Field(description="The uploaded file's name, sanitised")
    status: str = Field(description="'success', or 'error' when upscaling failed and the original was kept")
    folder: str = Field(description="good_quality, upscaled or couldn't_upscale")
    s3_url: str = Field(
        description="Where the stored object is: an S3 URL, or local:<key> (relative to STORAGE_DIR) for local storage"
    )
    quality_score: float = Field(description="width × height / (3840 × 2160) of the upload")
    upscale_scale: int | None = Field(description="The scale applied (or attempted); null when not upscaled")
    processed_at: datetime
    # Extras beyond the original schema.
    key: str = Field(description="The stored object's key")
    request_id: str
    width: int
    height: int
    output_width: int
    output_height: int
    size_bytes: int
    model: str | None = None
    precision: str | None = Field(
        None, description="What the model ran in (float32, bfloat16, float16 or int8), when it ran"
    )
    tiles: int | None = Field(None, description="Tiles the image was cut into for the model")
    duplicate: bool = Field(description="True when an identical upload was already stored under this key")
    pending: bool = Field(
        False,
        description="True when the bucket was unreachable: the object is kept in a durable local spool and "
        "reaches the bucket (at this key and URL) as soon as it answers",
    )
    timings_ms: dict[str, float]
    download_url: str | None = Field(
        None,
        description="Where to download the stored object: a presigned URL that expires (S3), or this "
        "service's /api/objects/{key} (local storage; send X-API-Key when the service has one). "
        "Filled in when a result is shown, not stored with it.",
    )
    quality_metrics: dict[str, float | int | None] | None = Field(
        None,
        description="No-reference metrics: resolution (= quality_score), sharpness (0-1, higher is sharper), "
        "jpeg_quality (1-100 from the quantisation tables, null unless JPEG), noise (σ in 8-bit levels), "
        "measured_at_scale (1, or 0.125 for a stored JPEG measured on its 1/8 draft)",
    )
    route: str | None = Field(None, description="The quality-policy rule that decided store vs upscale and the model")

    @classmethod
    def of(cls, outcome: Outcome, request_id: str, download_url: str | None = None) -> UploadResult:
        return cls(
            original_key=outcome.original_key,
            status=outcome.status.value,
            folder=outcome.folder.value,
            s3_url=outcome.stored.url,
            quality_score=outcome.quality_score,
            upscale_scale=outcome.upscale_scale,
            processed_at=outcome.processed_at,
            key=outcome.stored.key,
            request_id=request_id,
            width=outcome.width,
            height=outcome.height,
            output_width=outcome.output_width,
            output_height=outcome.output_height,
            size_bytes=outcome.stored.size,
            model=outcome.model,
            precision=outcome.precision,
            tiles=outcome.tiles,
            duplicate=not outcome.stored.created,
            pending=outcome.stored.pending,
            timings_ms=outcome.timings_ms,
            download_url=download_url,
            quality_metrics=outcome.quality_metrics,
            route=outcome.route,
        )
