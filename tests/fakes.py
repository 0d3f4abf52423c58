"""Fake deployment handles for the in-process tiers (no Ray), one family for every such test: plain
objects whose methods answer ``.remote(...)`` with an awaitable, as Serve's handles do, so the flow
and the ingress's HTTP contract run in milliseconds.

- ``FakeUpscaler``: ×``scale``, recording what reached it (pixels, format, measured degradation); a
  placeholder output by default, a real bicubic picture with ``pixels=True`` (the web UI's tests),
  ``fail=True`` raises, ``delay_s`` waits (a cancellation is counted).
- ``FakeStorage``: objects in a dict under the keys storage would give them.
- ``LocalStorage``: the real Storage deployment's code over the local backend in a folder.
- ``FakeJobs``: the jobs consumer's ingress-facing methods over dicts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from configs.settings import load_settings
from deployments.contracts.errors import JobsUnavailableError
from deployments.contracts.values import (
    DecodedImage,
    Degradation,
    EncodedImage,
    ModelSummary,
    NewJob,
    StoredObject,
    UpscaledImage,
)
from deployments.storage.deployment import Storage
from deployments.upscaler.encode import encode


class Method:
    """A handle's method: ``remote`` returns an awaitable of ``fn``'s answer (``fn`` plain or async),
    run only when awaited, so errors surface where a real call's would."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def remote(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        async def call() -> Any:
            answer = self.fn(*args, **kwargs)
            return await answer if inspect.isawaitable(answer) else answer

        return call()


class FakeUpscaler:
    def __init__(self, scale: int = 2, *, pixels: bool = False, fail: bool = False, delay_s: float = 0.0) -> None:
        self.scale, self.pixels, self.fail, self.delay_s = scale, pixels, fail, delay_s
        self.summary = ModelSummary(f"vcsr-m-x{scale}", "vcsr", scale, 1, 1, "", True, False, True, {}, "fidelity")
        self.formats: list[str] = []
        self.received: list[DecodedImage] = []
        self.degradations: list[Degradation | None] = []
        self.cancelled = 0
        self.models = Method(lambda: [self.summary])
        self.unavailable_reason = Method(lambda: None)
        self.upscale = Method(self._upscale)

    def options(self, *, multiplexed_model_id: str) -> FakeUpscaler:
        return self

    async def _upscale(
        self, image: DecodedImage, fmt: str | None = None, degradation: Degradation | None = None
    ) -> UpscaledImage:
        fmt = fmt or "png"
        self.formats.append(fmt)
        self.received.append(image)
        self.degradations.append(degradation)
        if self.fail:
            raise RuntimeError("the fake upscaler was told to fail")
        try:
            await asyncio.sleep(self.delay_s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        size = (image.width * self.scale, image.height * self.scale)
        if self.pixels:
            encoded = encode(np.asarray(Image.fromarray(image.pixels).resize(size, Image.Resampling.BICUBIC)), fmt)
        else:
            encoded = EncodedImage(b"upscaled", fmt, f"image/{fmt}", *size)
        return UpscaledImage(encoded, self.summary.name, self.scale, "float32", 1, self.delay_s, 0.0)


class FakeStorage:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.owners: list[str | None] = []  # the owner of each put, in order
        self.put = Method(self._put)
        self.put_job_input = Method(lambda job_id, index, image: self._store(f"jobs/{job_id}/{index}", image.data))
        self.get = Method(lambda key, owner=None: self.objects[key])
        self.delete_job_input = Method(lambda key: self.objects.pop(key, None) is not None)
        self.presigns = Method(lambda: False)
        self.download_url = Method(lambda key, expires_s=3600, owner=None: None)
        self.unavailable_reason = Method(lambda: None)
        self.spool_status = Method(lambda: None)

    def _store(self, key: str, data: bytes) -> StoredObject:
        created = key not in self.objects
        self.objects[key] = data
        return StoredObject(key, f"local:{key}", len(data), hashlib.sha256(data).hexdigest(), created)

    def _put(
        self,
        folder: Any,
        filename: str | None,
        digest: str,
        image: EncodedImage,
        made_as: str | None,
        owner: str | None = None,
    ) -> Any:
        stem = (filename or "image").rsplit(".", 1)[0]
        stored = self._store(f"{folder.value}/{stem}-{digest[:16]}.{image.extension}", image.data)
        self.owners.append(owner)
        return dataclasses.replace(stored, stem=stem)


class LocalStorage:
    """The real Storage deployment's methods over the local backend in ``root``, called in-process."""

    def __init__(self, root: Path) -> None:
        self.inner = Storage.func_or_class(load_settings(storage_dir=root, s3_bucket=None))  # type: ignore[attr-defined]
        methods = ("put", "put_job_input", "get", "delete_job_input", "presigns", "download_url", "unavailable_reason")
        for name in (*methods, "spool_status"):
            setattr(self, name, Method(getattr(self.inner, name)))


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
