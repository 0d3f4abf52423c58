"""The flow over fake handles: what reaches the upscaler and storage; an image over MAX_UPSCALE_PIXELS
or past its deadline keeps its original; an output no encoder could write at the scale is made as PNG
before the upscaler runs; full decodes are bounded per replica; dead replicas and full queues."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from ray.exceptions import ActorDiedError
from ray.serve.exceptions import BackPressureError

import deployments.flow.flow as flow_module
from bench import images
from configs.quality_policy import parse_policy
from configs.settings import load_settings
from deployments.contracts.errors import OverloadedError, StorageError
from deployments.contracts.values import DecodedImage, Degradation, Folder, Status
from deployments.flow import inspection, quality
from deployments.flow.flow import Flow, Upload, output_format
from tests.fakes import FakeStorage, FakeUpscaler, LocalStorage, Method


def run(flow: Flow, data: bytes, fmt: str | None = None) -> Any:
    return asyncio.run(flow.process(Upload(data, "a.png", "rid", None, fmt)))


def test_a_small_image_is_decoded_once_and_upscaled() -> None:
    upscaler, storage = FakeUpscaler(), FakeStorage()
    outcome = run(Flow(upscaler, storage, load_settings()), images.jpeg(64, 48))
    assert (outcome.folder, outcome.status) == (Folder.UPSCALED, Status.SUCCESS)
    assert [image.pixels.shape for image in upscaler.received] == [(48, 64, 3)]
    assert list(storage.objects.values()) == [b"upscaled"]


def test_an_image_over_the_upscale_limit_never_reaches_the_upscaler() -> None:
    upscaler, storage, data = FakeUpscaler(), FakeStorage(), images.jpeg(64, 48)
    outcome = run(Flow(upscaler, storage, load_settings(max_upscale_pixels=64 * 48 - 1)), data)
    assert (outcome.folder, outcome.status) == (Folder.COULDNT_UPSCALE, Status.ERROR)
    assert "decode" not in outcome.timings_ms  # refused from the header: no pixel decoded or shipped
    assert upscaler.received == [] and list(storage.objects.values()) == [data]


def test_past_the_deadline_the_original_is_kept_in_couldnt_upscale() -> None:
    upscaler, storage = FakeUpscaler(delay_s=30), FakeStorage()
    flow = Flow(upscaler, storage, load_settings(upscale_timeout_s=0.2))
    source = images.png(32, 32)
    outcome = run(flow, source)
    assert (outcome.folder, outcome.status) == (Folder.COULDNT_UPSCALE, Status.ERROR)
    assert list(storage.objects.values()) == [source] and upscaler.cancelled == 1


def test_an_upscaler_that_fails_leaves_the_original_in_couldnt_upscale(tmp_path: Path) -> None:
    """The upscaler itself raises (``FakeUpscaler(fail=True)``): real local storage keeps the upload's
    exact bytes under couldn't_upscale/ and the outcome says error."""
    upscaler, source = FakeUpscaler(fail=True), images.png(32, 32, seed=4)
    outcome = run(Flow(upscaler, LocalStorage(tmp_path), load_settings(storage_dir=tmp_path)), source)  # type: ignore[arg-type]
    assert len(upscaler.received) == 1  # it really reached the upscaler, which failed
    assert (outcome.folder, outcome.status) == (Folder.COULDNT_UPSCALE, Status.ERROR)
    assert outcome.stored.key.startswith("couldn't_upscale/a-") and outcome.upscale_scale == 2
    assert (tmp_path / outcome.stored.key).read_bytes() == source
    assert [p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*") if p.is_file()] == ["couldn't_upscale"]


def test_within_the_deadline_the_output_is_stored() -> None:
    storage = FakeStorage()
    outcome = run(Flow(FakeUpscaler(), storage, load_settings()), images.png(32, 32))
    assert (outcome.folder, outcome.status) == (Folder.UPSCALED, Status.SUCCESS)


@pytest.mark.parametrize(
    ("fmt", "size", "expected"),
    [
        ("webp", (8191, 4), "webp"),  # 16382 px: fits
        ("webp", (8192, 1), "png"),  # 16384 px: over libwebp's 16383
        ("webp", (1, 9000), "png"),
        ("jpeg", (32767, 1), "jpeg"),
        ("jpeg", (32768, 1), "png"),  # 65536 px: over JPEG's 65535
        ("png", (100000, 1), "png"),
    ],
)
def test_outputs_no_encoder_could_write_are_made_as_png(fmt: str, size: tuple[int, int], expected: str) -> None:
    assert output_format(fmt, *size, scale=2) == expected


def test_the_fallback_is_decided_before_the_upscaler_runs() -> None:
    upscaler = FakeUpscaler()
    run(Flow(upscaler, FakeStorage(), load_settings()), images.png(9000, 1), "webp")
    assert upscaler.formats == ["png"]


def test_full_decodes_are_bounded_per_replica(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight uploads at once with MAX_CONCURRENT_DECODES=2: decodes are held until all eight have been
    handed to the decoder and two are running, so a third that started would be seen, without timing."""
    running, peak, submitted = 0, 0, 0
    changed = threading.Condition()
    release = threading.Event()
    real_decode = inspection.decode

    def held_decode(probe: inspection.Probe, max_pixels: int) -> DecodedImage:
        nonlocal running, peak
        with changed:
            running += 1
            peak = max(peak, running)
            changed.notify_all()
        assert release.wait(10), "the test never released the decodes"
        with changed:
            running -= 1
        return real_decode(probe, max_pixels)

    monkeypatch.setattr(inspection, "decode", held_decode)
    flow = Flow(FakeUpscaler(), FakeStorage(), load_settings(max_concurrent_decodes=2))
    full_decode = flow._full_decode

    async def counted(fn: Any, probe: inspection.Probe) -> Any:
        nonlocal submitted
        with changed:
            submitted += 1
            changed.notify_all()
        return await full_decode(fn, probe)

    monkeypatch.setattr(flow, "_full_decode", counted)

    def all_in_and_two_running() -> None:
        with changed:
            assert changed.wait_for(lambda: submitted == 8 and running >= 2, timeout=10)
        release.set()

    async def many() -> None:
        uploads = [flow.process(Upload(images.png(16, 16, seed=i), "a.png", "r")) for i in range(8)]
        await asyncio.gather(*uploads, asyncio.to_thread(all_in_and_two_running))

    asyncio.run(many())
    assert peak == 2


class FlakyStorage(FakeStorage):
    """A storage whose replica dies under the first ``failures`` puts (Serve replaces it)."""

    def __init__(self, failures: int = 2) -> None:
        super().__init__()
        self.failures = failures
        stored = self.put

        async def put(*args: Any) -> Any:
            if self.failures:
                self.failures -= 1
                raise ActorDiedError()
            return await stored.remote(*args)

        self.put = Method(put)


def test_a_put_whose_storage_replica_died_is_sent_again() -> None:
    storage = FlakyStorage(failures=2)
    outcome = run(Flow(FakeUpscaler(), storage, load_settings()), images.png(32, 32))
    assert outcome.folder == Folder.UPSCALED and len(storage.objects) == 1 and storage.failures == 0


def test_storage_that_never_comes_back_is_a_503_not_a_500(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flow_module, "STORE_RETRY_S", 0.5)
    with pytest.raises(StorageError, match="did not answer") as failed:
        run(Flow(FakeUpscaler(), FlakyStorage(failures=1000), load_settings()), images.png(32, 32))
    assert failed.value.retry_after_s


def test_a_full_upscaler_queue_is_503_overloaded_and_nothing_is_stored() -> None:
    def refuse(*args: Any) -> Any:
        raise BackPressureError(num_queued_requests=32, max_queued_requests=32)

    upscaler, storage = FakeUpscaler(), FakeStorage()
    upscaler.upscale = Method(refuse)
    with pytest.raises(OverloadedError) as refused:
        run(Flow(upscaler, storage, load_settings()), images.png(32, 32))
    assert refused.value.retry_after_s and storage.objects == {}


def test_the_model_catalogue_is_asked_again_when_the_upscaler_replica_asked_died() -> None:
    """Found by the fault test once its kill was timed on work in flight: the first uploads of an ingress
    replica fetch the catalogue, and one whose upscaler replica died then got a 500."""
    upscaler, asked = FakeUpscaler(), []
    catalogue = upscaler.models

    async def models() -> Any:
        asked.append(1)
        if len(asked) == 1:
            raise ActorDiedError()
        return await catalogue.remote()

    upscaler.models = Method(models)
    outcome = run(Flow(upscaler, FakeStorage(), load_settings()), images.png(32, 32))
    assert outcome.folder == Folder.UPSCALED and len(asked) == 2


def test_the_measured_jpeg_quality_and_noise_go_to_the_upscaler_with_the_pixels() -> None:
    """A degradation-aware model is conditioned on what the flow measured (the upscaler binds it)."""
    upscaler = FakeUpscaler()
    jpeg = run(Flow(upscaler, FakeStorage(), load_settings()), images.encode(images.noise(64, 48), "JPEG", quality=40))
    png = run(Flow(upscaler, FakeStorage(), load_settings()), images.png(64, 48))
    assert upscaler.degradations == [
        Degradation(jpeg_quality=40, noise=jpeg.quality_metrics["noise"]),
        Degradation(jpeg_quality=None, noise=png.quality_metrics["noise"]),
    ]


@pytest.mark.parametrize(("conditions", "measured_again"), [((), 0), (("jpeg_quality", "noise"), 1)])
def test_the_full_pixels_are_measured_again_only_for_a_model_conditioned_on_noise(
    monkeypatch: pytest.MonkeyPatch, conditions: tuple[str, ...], measured_again: int
) -> None:
    """A large JPEG is measured on its 1/8 draft; a policy that upscales it anyway then decodes it in full.
    Only a model that reads the noise has it measured again on those full pixels: a plain model
    ignores it, and gets the draft's reading."""
    full_pixel_crops: list[object] = []
    real_crops = quality.crops

    def spy(pixels: Any) -> Any:
        full_pixel_crops.append(pixels)
        return real_crops(pixels)

    monkeypatch.setattr(quality, "crops", spy)
    upscaler = FakeUpscaler()
    upscaler.summary = replace(upscaler.summary, conditions=conditions)
    always = parse_policy({"rules": [{"name": "always", "route": "upscale", "model": "fidelity"}]})
    flow = Flow(upscaler, FakeStorage(), load_settings(quality_threshold=0.0001), always)
    outcome = run(flow, images.encode(images.noise(256, 192), "JPEG", quality=40))
    assert outcome.folder == Folder.UPSCALED and outcome.quality_metrics["measured_at_scale"] == 0.125
    assert len(full_pixel_crops) == measured_again
    [told] = upscaler.degradations
    assert told is not None and (told.noise == outcome.quality_metrics["noise"]) == (measured_again == 0)
