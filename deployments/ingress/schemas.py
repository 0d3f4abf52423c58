"""The JSON the API answers: the original service's schema, with extra fields, never fewer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from deployments.contracts.results import UploadResult
from deployments.contracts.values import Outcome, SpoolStatus
from deployments.ingress.errors import documented_errors


class UploadResponse(BaseModel):
    success: bool
    message: str
    result: UploadResult

    @classmethod
    def of(cls, outcome: Outcome, request_id: str, download_url: str | None = None) -> UploadResponse:
        result = UploadResult.of(outcome, request_id, download_url)
        return cls(success=True, message=outcome.message, result=result)


class ErrorResponse(BaseModel):
    success: bool = False
    message: str
    error: str
    request_id: str | None = None


# FastAPI ``responses=``: every refusal a route may answer, from the error classes.
ERRORS = documented_errors(ErrorResponse)
# The routes that take images: nothing they do is "not found" (an unknown model is an invalid field, 422).
SUBMIT_ERRORS = {status: answer for status, answer in ERRORS.items() if status != 404}
# What any route may answer at the door (``AccessControl``): no or a wrong key, a rate limit.
DOOR_ERRORS: dict[int | str, dict[str, Any]] = {status: ERRORS[status] for status in (401, 429)}


class HealthResponse(BaseModel):
    status: str
    reasons: list[str] = []
    spool: SpoolStatus | None = Field(None, description="Objects waiting for the bucket (S3 storage only)")


class JobItem(BaseModel):
    index: int
    filename: str
    status: str = Field(description="pending, success, error (the original kept, or the item failed) or cancelled")
    result: UploadResult | None = Field(description="The same object the upload route answers, once stored")
    error: dict[str, str] | None = Field(description="{code, message} when the item failed without a result")


class WebhookState(BaseModel):
    url: str
    attempts: int
    delivered_at: str | None
    last_error: str | None


class JobResponse(BaseModel):
    job_id: str
    status: str = Field(description="queued, running, completed, failed or cancelled")
    total: int
    done: int = Field(description="Items that have ended (success, error or cancelled)")
    failed: int = Field(description="Items that ended with status error")
    created_at: str
    updated_at: str
    model: str | None = None
    format: str | None = None
    items: list[JobItem]
    webhook: WebhookState | None


class JobAccepted(BaseModel):
    success: bool = True
    job_id: str
    status: str
    total: int


class JobList(BaseModel):
    jobs: list[JobResponse]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page; null at the end")
