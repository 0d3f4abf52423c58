"""Fake handles for the in-process tier: the ingress's real routes over a flow whose deployments are
plain objects answering ``.remote`` calls (no Ray), so the HTTP contract is tested in milliseconds."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from deployments.contracts import EncodedImage, ModelSummary, NewJob, StoredObject, UpscaledImage
from deployments.errors import JobsUnavailableError


class Method:
    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def remote(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        async def call() -> Any:
            return self.fn(*args, **kwargs)

        return call()


MODEL = ModelSummary("vcsr-m-x2", "vcsr", 2, 1, 1, "", True, False, True, {}, "fidelity")


class FakeUpscaler:
    def __init__(self) -> None:
        self.models = Method(lambda: [MODEL])
        self.upscale = Method(self._upscale)
        self.unavailable_reason = Method(lambda: None)

    def options(self, *, multiplexed_model_id: str) -> FakeUpscaler:
        return self

    def _upscale(self, image: Any, fmt: str | None) -> UpscaledImage:
        encoded = EncodedImage(b"\x89PNG-upscaled", "png", "image/png", image.width * 2, image.height * 2)
        return UpscaledImage(encoded, "vcsr-m-x2", 2, "float32", 1, 0.01, 0.01)


class FakeStorage:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.put = Method(self._put)
        self.put_job_input = Method(lambda job_id, index, image: self._store(f"jobs/{job_id}/{index}", image.data))
        self.get = Method(lambda key: self.objects[key])
        self.download_url = Method(lambda key: None)
        self.download_url = Method(lambda key, expires_s=3600: None)
        self.unavailable_reason = Method(lambda: None)

    def _store(self, key: str, data: bytes) -> StoredObject:
        created = key not in self.objects
        self.objects[key] = data
        return StoredObject(key, f"file:///{key}", len(data), hashlib.sha256(data).hexdigest(), created)

    def _put(self, folder: Any, filename: str | None, digest: str, image: EncodedImage, made_as: str | None) -> Any:
        stem = (filename or "image").rsplit(".", 1)[0]
        stored = self._store(f"{folder.value}/{stem}-{digest[:16]}.{image.extension}", image.data)
        return dataclasses.replace(stored, stem=stem)


class FakeJobs:
    def __init__(self, up: bool = True) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.submitted: list[NewJob] = []
        self.up = up
        self.submit = Method(self._submit)
        self.owners: dict[str, str] = {}
        self.get = Method(self._mine)
        self.cancel = Method(self._mine)
        self.list_jobs = Method(
            lambda limit, cursor, owner="": ([j for i, j in self.jobs.items() if self.owners[i] == owner][:limit], None)
        )
        self.queue_depth = Method(lambda: 0)

    def _submit(self, job: NewJob) -> dict[str, Any]:
        if not self.up:
            raise JobsUnavailableError("ConnectionError")
        self.submitted.append(job)
        job_id = f"job{len(self.jobs):05d}"
        items = [{"index": i, "filename": f.filename, "status": "pending", "result": None, "error": None}
                 for i, f in enumerate(job.files)]  # fmt: skip
        self.jobs[job_id] = {"job_id": job_id, "status": "queued", "total": len(items), "done": 0, "failed": 0,
                             "created_at": "t", "updated_at": "t", "items": items, "webhook": None}  # fmt: skip
        self.owners[job_id] = job.owner
        return self.jobs[job_id]

    def _mine(self, job_id: str, owner: str = "") -> dict[str, Any] | None:
        return self.jobs.get(job_id) if self.owners.get(job_id) == owner else None
