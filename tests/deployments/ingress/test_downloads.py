"""Download URLs: storage says whether it presigns (asked once); the object route serves the rest."""

from __future__ import annotations

import asyncio

from deployments.ingress.downloads import Downloads, object_path
from tests.fakes import FakeStorage, Method


def test_storage_that_does_not_presign_is_asked_once_and_never_for_a_url() -> None:
    storage, asked, signed = FakeStorage(), [], []
    storage.presigns = Method(lambda: asked.append(1) or False)
    storage.download_url = Method(lambda key, owner=None: signed.append(key))
    downloads = Downloads(storage)  # type: ignore[arg-type]
    urls = [asyncio.run(downloads.url(f"upscaled/a-{i}.png")) for i in range(3)]
    assert urls == [object_path(f"upscaled/a-{i}.png") for i in range(3)]
    assert (len(asked), signed) == (1, [])


def test_storage_that_presigns_signs_for_the_owner_and_falls_back_to_the_route() -> None:
    storage = FakeStorage()
    storage.presigns = Method(lambda: True)
    storage.download_url = Method(lambda key, owner=None: f"https://signed.example/{key}?{owner}" if owner else None)
    downloads = Downloads(storage)  # type: ignore[arg-type]
    assert asyncio.run(downloads.url("upscaled/b.png", "k1")) == "https://signed.example/upscaled/b.png?k1"
    assert asyncio.run(downloads.url("upscaled/b.png", None)) == "/api/objects/upscaled/b.png"  # not its owner


def test_storage_that_cannot_say_is_asked_again_later() -> None:
    storage, answers = FakeStorage(), iter([RuntimeError("ActorDiedError"), True])

    def presigns() -> bool:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    storage.presigns = Method(presigns)
    storage.download_url = Method(lambda key, owner=None: "https://signed.example/c")
    downloads = Downloads(storage)  # type: ignore[arg-type]
    assert asyncio.run(downloads.url("upscaled/c.png")) == "/api/objects/upscaled/c.png"
    assert asyncio.run(downloads.url("upscaled/c.png")) == "https://signed.example/c"
