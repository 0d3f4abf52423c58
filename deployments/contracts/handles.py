"""The deployments' handles, typed: a ``Protocol`` per deployment, so a misspelt ``.remote`` method
fails ``mypy --strict``. The app builder injects the real ``DeploymentHandle``s; tests inject fakes."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol, TypeVar

from deployments.contracts.values import ModelSummary, SpoolStatus, StoredObject, UpscaledImage

T = TypeVar("T", covariant=True)


class Remote(Protocol[T]):
    """A deployment method seen through a handle."""

    def remote(self, *args: Any, **kwargs: Any) -> Awaitable[T]: ...


class StorageHandle(Protocol):
    @property
    def put(self) -> Remote[StoredObject]: ...
    @property
    def put_job_input(self) -> Remote[StoredObject]: ...
    @property
    def get(self) -> Remote[bytes]: ...
    @property
    def delete_job_input(self) -> Remote[bool]: ...
    @property
    def presigns(self) -> Remote[bool]: ...
    @property
    def download_url(self) -> Remote[str | None]: ...
    @property
    def unavailable_reason(self) -> Remote[str | None]: ...
    @property
    def spool_status(self) -> Remote[SpoolStatus | None]: ...


class UpscalerHandle(Protocol):
    @property
    def upscale(self) -> Remote[UpscaledImage]: ...
    @property
    def models(self) -> Remote[list[ModelSummary]]: ...
    @property
    def unavailable_reason(self) -> Remote[str | None]: ...
    def options(self, *, multiplexed_model_id: str) -> UpscalerHandle: ...


class JobsHandle(Protocol):
    """Jobs travel as the JSON-ready dicts the API shows (``deployments/jobs/records.py``)."""

    @property
    def submit(self) -> Remote[dict[str, Any]]: ...
    @property
    def get(self) -> Remote[dict[str, Any] | None]: ...
    @property
    def list_jobs(self) -> Remote[tuple[list[dict[str, Any]], float | None]]: ...
    @property
    def cancel(self) -> Remote[dict[str, Any] | None]: ...
    @property
    def queue_depth(self) -> Remote[int]: ...
