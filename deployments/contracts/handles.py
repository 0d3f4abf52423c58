"""The deployments' handles, typed: a ``Protocol`` per deployment and one per method, whose ``remote``
has the method's own signature, so a misspelt method or a wrong argument fails ``mypy --strict``.
The app builder injects the real ``DeploymentHandle``s; tests inject fakes."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol, TypeVar

from deployments.contracts.jobs import JobView
from deployments.contracts.values import (
    DecodedImage,
    Degradation,
    EncodedImage,
    Folder,
    ModelSummary,
    NewJob,
    SpoolStatus,
    StoredObject,
    UpscaledImage,
)

T_co = TypeVar("T_co", covariant=True)


class Put(Protocol):
    def remote(
        self,
        folder: Folder,
        filename: str | None,
        source_digest: str,
        image: EncodedImage,
        variant: str | None = None,
        owner: str | None = None,
    ) -> Awaitable[StoredObject]: ...


class PutJobInput(Protocol):
    def remote(self, job_id: str, index: int, image: EncodedImage) -> Awaitable[StoredObject]: ...


class Get(Protocol):
    def remote(self, key: str, owner: str | None = None) -> Awaitable[bytes]: ...


class DeleteJobInput(Protocol):
    def remote(self, key: str) -> Awaitable[bool]: ...


class DownloadUrl(Protocol):
    def remote(self, key: str, expires_s: int = ..., owner: str | None = None) -> Awaitable[str | None]: ...


class Ask(Protocol[T_co]):
    """A method that takes nothing: a question (health, depth, capabilities)."""

    def remote(self) -> Awaitable[T_co]: ...


class StorageHandle(Protocol):
    @property
    def put(self) -> Put: ...
    @property
    def put_job_input(self) -> PutJobInput: ...
    @property
    def get(self) -> Get: ...
    @property
    def delete_job_input(self) -> DeleteJobInput: ...
    @property
    def presigns(self) -> Ask[bool]: ...
    @property
    def download_url(self) -> DownloadUrl: ...
    @property
    def unavailable_reason(self) -> Ask[str | None]: ...
    @property
    def spool_status(self) -> Ask[SpoolStatus | None]: ...


class Upscale(Protocol):
    def remote(
        self, image: DecodedImage, fmt: str | None = None, degradation: Degradation | None = None
    ) -> Awaitable[UpscaledImage]: ...


class UpscalerHandle(Protocol):
    @property
    def upscale(self) -> Upscale: ...
    @property
    def models(self) -> Ask[list[ModelSummary]]: ...
    @property
    def unavailable_reason(self) -> Ask[str | None]: ...
    def options(self, *, multiplexed_model_id: str) -> UpscalerHandle: ...


class SubmitJob(Protocol):
    def remote(self, new: NewJob) -> Awaitable[JobView]: ...


class OwnedJob(Protocol):
    """``get`` and ``cancel``: the job, if ``owner`` (a key id; "" without keys) made it."""

    def remote(self, job_id: str, owner: str = "") -> Awaitable[JobView | None]: ...


class ListJobs(Protocol):
    """Newest first from ``cursor``; ``owner`` None lists every key's jobs (monitoring)."""

    def remote(
        self, limit: int, cursor: float | None, owner: str | None = ""
    ) -> Awaitable[tuple[list[JobView], float | None]]: ...


class JobsHandle(Protocol):
    """Jobs travel as the JSON-ready views the API shows (``deployments/contracts/jobs.py``)."""

    @property
    def submit(self) -> SubmitJob: ...
    @property
    def get(self) -> OwnedJob: ...
    @property
    def list_jobs(self) -> ListJobs: ...
    @property
    def cancel(self) -> OwnedJob: ...
    @property
    def queue_depth(self) -> Ask[int]: ...
