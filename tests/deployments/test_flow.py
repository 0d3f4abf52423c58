"""The flow over fake handles: what reaches the upscaler and storage, and what is kept when upscaling fails."""

import asyncio
from typing import Any

import numpy as np

from configs.settings import load_settings
from deployments.contracts import (
    DecodedImage,
    EncodedImage,
    Folder,
    ModelSummary,
    Status,
    StoredObject,
    UpscaledImage,
)
from deployments.flow import Flow, Upload
from tests import images

MODEL = ModelSummary("m", "arch", 2, 1, 1, "", True, False, False, {})


class Call:
    def __init__(self, fn: Any) -> None:
        self.fn = fn

    async def remote(self, *args: Any) -> Any:
        return self.fn(*args)


class FakeUpscaler:
    def __init__(self, fail: bool = False) -> None:
        self.received: list[DecodedImage] = []
        self.fail = fail
        self.models = Call(lambda: [MODEL])
        self.upscale = Call(self._upscale)

    def options(self, **_: Any) -> "FakeUpscaler":
        return self

    def _upscale(self, image: DecodedImage, fmt: str | None) -> UpscaledImage:
        self.received.append(image)
        if self.fail:
            raise RuntimeError("the replica died")
        encoded = EncodedImage(b"png", "png", "image/png", 2 * image.width, 2 * image.height)
        return UpscaledImage(encoded, "m", 2, "float32", 1, 0.1, 0.01)


class FakeStorage:
    def __init__(self) -> None:
        self.stored: list[tuple[Folder, bytes]] = []
        self.put = Call(self._put)

    def _put(self, folder: Folder, filename: str | None, digest: str, image: EncodedImage, *_: Any) -> StoredObject:
        self.stored.append((folder, image.data))
        return StoredObject(f"{folder.value}/x.{image.extension}", "file:///x", len(image.data), digest, True, "x")


def run(data: bytes, upscaler: FakeUpscaler, storage: FakeStorage, **settings: Any) -> Any:
    flow = Flow(upscaler, storage, load_settings(**settings))  # type: ignore[arg-type]
    return asyncio.run(flow.process(Upload(data, "x.jpg", "rid")))


def test_a_small_image_is_decoded_once_and_upscaled() -> None:
    upscaler, storage = FakeUpscaler(), FakeStorage()
    outcome = run(images.jpeg(64, 48), upscaler, storage)
    assert outcome.folder is Folder.UPSCALED and outcome.status is Status.SUCCESS
    assert [image.pixels.shape for image in upscaler.received] == [(48, 64, 3)]
    assert storage.stored == [(Folder.UPSCALED, b"png")]


def test_an_image_over_the_upscale_limit_never_reaches_the_upscaler() -> None:
    upscaler, storage, data = FakeUpscaler(), FakeStorage(), images.jpeg(64, 48)
    outcome = run(data, upscaler, storage, max_upscale_pixels=64 * 48 - 1)
    assert outcome.folder is Folder.COULDNT_UPSCALE and outcome.status is Status.ERROR
    assert "couldn't_upscale" in outcome.message and "decode" not in outcome.timings_ms
    assert upscaler.received == [] and storage.stored == [(Folder.COULDNT_UPSCALE, data)]


def test_a_failed_upscale_keeps_the_original() -> None:
    upscaler, storage, data = FakeUpscaler(fail=True), FakeStorage(), images.jpeg(64, 48)
    outcome = run(data, upscaler, storage)
    assert outcome.folder is Folder.COULDNT_UPSCALE and len(upscaler.received) == 1
    assert storage.stored == [(Folder.COULDNT_UPSCALE, data)]
    assert np.asarray(upscaler.received[0].pixels).shape == (48, 64, 3)
