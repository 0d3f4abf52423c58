"""Fakes that make real pictures for the web UI's in-process tests: the upscaler is Pillow's bicubic
and storage is the real Storage deployment's code over the local backend in a folder (no Ray)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from deployments.contracts import DecodedImage, ModelSummary, UpscaledImage
from deployments.storage.deployment import Storage
from deployments.upscaler.encode import encode


class _Method:
    def __init__(self, fn: Callable[..., Awaitable[Any]]) -> None:
        self.fn = fn

    def remote(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        return self.fn(*args, **kwargs)


class FakeUpscaler:
    """×``scale`` with Pillow's bicubic; ``fail=True`` makes every upscale raise."""

    def __init__(self, scale: int = 2, fail: bool = False) -> None:
        self.scale, self.fail = scale, fail
        self.upscale = _Method(self._upscale)
        self.models = _Method(self._models)
        self.unavailable_reason = _Method(self._ok)

    def options(self, *, multiplexed_model_id: str) -> FakeUpscaler:
        return self

    async def _ok(self) -> str | None:
        return None

    async def _models(self) -> list[ModelSummary]:
        return [
            ModelSummary(
                f"fake-x{self.scale}",
                "bicubic",
                self.scale,
                0,
                0,
                "Pillow bicubic",
                True,
                True,
                True,
                {"Set5": 33.66},
                "fidelity",
            )
        ]

    async def _upscale(self, image: DecodedImage, fmt: str | None = None) -> UpscaledImage:
        if self.fail:
            raise RuntimeError("the fake upscaler was told to fail")
        big = Image.fromarray(image.pixels).resize((image.width * self.scale, image.height * self.scale), Image.BICUBIC)
        encoded = encode(np.asarray(big), fmt or "png")
        return UpscaledImage(encoded, f"fake-x{self.scale}", self.scale, "float32", 1, 0.0, 0.0)


class FakeStorage:
    """The real Storage deployment's methods over the local backend, called in-process."""

    def __init__(self, root: Path) -> None:
        from configs.settings import load_settings

        inner = Storage.func_or_class(load_settings(storage_dir=root, s3_bucket=None))  # type: ignore[attr-defined]
        self.inner = inner
        for name in ("put", "put_job_input", "get", "download_url", "unavailable_reason", "spool_status"):
            setattr(self, name, _Method(getattr(inner, name)))


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.get_event_loop().run_until_complete(coro)
