"""A job as it crosses the seam between the jobs deployment and the ingress: typed views of the JSON the
API shows (``GET /api/jobs/{id}``) and webhooks carry, so a misspelt key or a wrong type fails mypy."""

from __future__ import annotations

from enum import StrEnum
from typing import TypedDict

# JSON as Python holds it: what an item's result (the upload route's answer) and a webhook's state are.
JSON = str | int | float | bool | None | list["JSON"] | dict[str, "JSON"]


class ItemStatus(StrEnum):
    """An item's life: ``pending → running → success | error``, or ``pending → cancelled``."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"  # upscaled, or stored as uploaded
    ERROR = "error"  # the original kept (its result says so), or the item failed (``error`` says why)
    CANCELLED = "cancelled"


ENDED = (ItemStatus.SUCCESS, ItemStatus.ERROR, ItemStatus.CANCELLED)


class JobStatus(StrEnum):
    """A job's: ``queued → running → completed | failed``, or ``cancelled``; the last three are final."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"  # every item ended, at least one with a result
    FAILED = "failed"  # every item failed
    CANCELLED = "cancelled"


class ItemError(TypedDict):
    code: str
    message: str


class ItemView(TypedDict):
    index: int
    filename: str
    status: ItemStatus
    result: dict[str, JSON] | None  # the upload route's result object, once stored
    error: ItemError | None


class JobView(TypedDict):
    job_id: str
    status: JobStatus
    total: int
    done: int
    failed: int
    created_at: str
    updated_at: str
    model: str | None
    format: str | None
    items: list[ItemView]
    webhook: dict[str, JSON] | None
