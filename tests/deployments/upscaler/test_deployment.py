"""The upscaler deployment class outside Serve: its catalogue, live tunables, clear start-up errors.
(Its batching and multiplexing need a real replica; tests/integration runs those.)"""

import asyncio
import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError

import deployments.upscaler.catalog as catalog_module
import deployments.upscaler.deployment as deployment
from configs.model_registry import ModelEntry
from configs.settings import load_settings
from deployments.contracts.values import DecodedImage, Degradation
from deployments.upscaler.catalog import Catalog
from deployments.upscaler.deployment import Upscaler, tile_pixels
from deployments.upscaler.tunables import UpscalerConfig
from models.arch import Conditioned, condition_vector
from models.engine import Engine
from models.loader import LoadedModel, ModelLoadError, load_model
from models.precision import PrecisionUnavailableError
from models.registry import UnregisteredModelError
from models.tiling import LAYOUTS
from tests.bundled import BUNDLED
from tests.tiny_models import CONDITIONED_X2, conditioned_model_file


class NoMetrics:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


@pytest.fixture
def upscaler(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(deployment, "UpscalerMetrics", NoMetrics)  # Serve metrics need a replica
    return Upscaler.func_or_class(load_settings(upscale_scale=4), [])


def anime(shared_dir: Path) -> ModelEntry:
    return ModelEntry(name="anime", path=shared_dir / "weights" / "realesr-animevideov3.pth", description="x4")


def test_the_bundled_model_for_the_scale_is_the_default(upscaler: Any) -> None:
    assert upscaler.default_engine.info.name == "vcsr-m-x4" and upscaler.default_engine.scale == 4
    assert upscaler.unavailable_reason() is None


def test_every_replica_starts_from_the_default_batch_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deployment, "UpscalerMetrics", NoMetrics)
    first = Upscaler.func_or_class(load_settings(), [])
    first.configure({"max_batch_pixels": 3 * 1024**2, "batch_wait_timeout_s": 1.0})
    second = Upscaler.func_or_class(load_settings(), [])
    assert second._forward_tiles._get_max_batch_size() == deployment.DEFAULT_BATCH_PIXELS
    assert second._forward_tiles._get_batch_wait_timeout_s() == deployment.DEFAULT_BATCH_WAIT_S


def test_user_config_is_applied_live(upscaler: Any) -> None:
    upscaler.configure(
        {"max_batch_pixels": 3 * 128**2, "batch_wait_timeout_s": 0.5, "tile_size": 128, "max_pixel_bytes_in_flight": 7}
    )
    assert upscaler.pixel_budget.limit == 7
    assert upscaler._forward_tiles._get_max_batch_size() == 3 * 128**2
    assert upscaler._forward_tiles._get_batch_wait_timeout_s() == 0.5
    assert upscaler.tile_size == 128


def test_a_tile_too_small_for_the_models_is_refused(upscaler: Any) -> None:
    with pytest.raises(ValidationError, match="tile_size\n  Input should be greater than or equal to 64"):
        upscaler.configure({"tile_size": 16})


def test_a_pixel_budget_smaller_than_one_tile_is_refused(upscaler: Any) -> None:
    with pytest.raises(ValueError, match="must hold one 1024×1024 tile"):
        upscaler.configure({"max_batch_pixels": 1000})


@pytest.mark.parametrize("key", ["tile_sise", "max_batch_pixel", "target_num_ongoing_requests_per_replica"])
def test_an_unknown_user_config_key_fails_and_changes_nothing(upscaler: Any, key: str) -> None:
    upscaler.configure({"tile_size": 512})
    with pytest.raises(ValidationError, match=f"{key}\n  Extra inputs are not permitted"):
        upscaler.configure({"tile_size": 256, key: 1})
    assert upscaler.tile_size == 512


def test_keys_left_out_of_the_user_config_take_their_defaults(upscaler: Any) -> None:
    upscaler.configure({"tile_size": 256, "tile_layout": "fixed"})
    upscaler.configure({})
    assert (upscaler.tile_size, upscaler.tile_layout) == (1024, "balanced")


def test_the_layouts_the_config_accepts_are_the_tilers() -> None:
    assert UpscalerConfig.model_json_schema()["properties"]["tile_layout"]["enum"] == list(LAYOUTS)


def test_batches_are_measured_in_input_pixels() -> None:
    engine = object()
    jobs = [(engine, torch.zeros(3, 256, 256, dtype=torch.uint8)), (engine, torch.zeros(3, 10, 20, dtype=torch.uint8))]
    assert tile_pixels(jobs) == 256 * 256 + 200  # type: ignore[arg-type]


def test_out_of_memory_retries_with_smaller_tiles(upscaler: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    async def fake_upscale_pixels(pixels: Any, forward: Any, tile_size: int, *args: Any) -> Any:
        seen.append(tile_size)
        if tile_size > 64:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return pixels, 1

    monkeypatch.setattr(deployment, "upscale_pixels", fake_upscale_pixels)
    image = DecodedImage(np.zeros((8, 8, 3), np.uint8))
    assert asyncio.run(upscaler._upscale_pixels(upscaler.default_engine, image))[1] == 1
    assert seen == [1024, 512, 256, 128, 64]


def test_a_model_that_asks_not_to_be_tiled_is_given_the_whole_image(
    upscaler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []

    async def fake_upscale_pixels(pixels: Any, forward: Any, tile_size: int, *args: Any) -> Any:
        seen.append(tile_size)
        return pixels, 1

    monkeypatch.setattr(deployment, "upscale_pixels", fake_upscale_pixels)
    engine = upscaler.default_engine
    monkeypatch.setattr(engine, "info", replace(engine.info, tiling="discouraged"))
    asyncio.run(upscaler._upscale_pixels(engine, DecodedImage(np.zeros((1500, 1900, 3), np.uint8))))
    assert seen == [1900]  # one tile over the whole image, instead of the configured 1024


def test_out_of_memory_with_the_smallest_tiles_fails(upscaler: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    async def always_oom(*args: Any) -> Any:
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(deployment, "upscale_pixels", always_oom)
    with pytest.raises(torch.OutOfMemoryError):
        asyncio.run(upscaler._upscale_pixels(upscaler.default_engine, DecodedImage(np.zeros((8, 8), np.uint8))))


def test_the_catalogue_lists_bundled_and_registered_models(shared_dir: Path) -> None:
    catalog = Catalog(load_settings(), [anime(shared_dir)])
    summaries = {m.name: m for m in catalog.summaries()}
    assert set(summaries) == {*BUNDLED, "anime"}
    assert summaries["vcsr-m-x2"].default and summaries["vcsr-m-x2"].psnr["Set5"] > 37
    assert summaries["anime"].scale == 4 and summaries["anime"].architecture == "RealESRGAN Compact"
    assert summaries["anime"].file_bytes == (shared_dir / "weights" / "realesr-animevideov3.pth").stat().st_size
    assert catalog.resolve(None) == "vcsr-m-x2" and catalog.resolve("anime") == "anime"
    with pytest.raises(
        UnregisteredModelError,
        match="anime, vcsr-jpeg-x2, vcsr-jpeg-x4, vcsr-m-x2, vcsr-m-x4, vcsr-real-x2, vcsr-real-x4, vcsr-s-x2",
    ):
        catalog.resolve("nope")


def test_model_path_is_served_under_its_stem_as_the_default(shared_dir: Path) -> None:
    path = shared_dir / "weights" / "realesr-animevideov3.pth"
    catalog = Catalog(load_settings(model_path=path, upscale_scale=4), [])
    assert catalog.default == "realesr-animevideov3" and catalog.infos[catalog.default].scale == 4


def test_a_default_model_of_another_scale_fails_start_up_naming_both(shared_dir: Path) -> None:
    path = shared_dir / "weights" / "realesr-animevideov3.pth"
    with pytest.raises(ValueError, match=r"upscales ×4 but UPSCALE_SCALE=2"):
        Catalog(load_settings(model_path=path, upscale_scale=2), [])


def test_an_unknown_default_model_lists_the_valid_names() -> None:
    with pytest.raises(UnregisteredModelError, match="vcsr-s-x2"):
        Catalog(load_settings(model_name="missing"), [])


def test_an_unloadable_registered_file_fails_start_up_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.pth"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(ModelLoadError, match="garbage.pth"):
        Catalog(load_settings(), [ModelEntry(name="garbage", path=bad)])


def test_each_model_file_is_loaded_once_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[str] = []
    real = catalog_module.load_model

    def counting(path: Path, name: str) -> LoadedModel:
        loads.append(name)
        return real(path, name)

    monkeypatch.setattr(catalog_module, "load_model", counting)
    catalog = Catalog(load_settings(), [])
    first = catalog.load(catalog.default)  # the engine's module: the one loaded to validate the file
    assert sorted(loads) == sorted(catalog.specs)
    catalog.load(catalog.default)  # later loads (after multiplexing evicted it) read the file again
    assert loads.count(catalog.default) == 2 and first.info.name == catalog.default


def test_the_tile_layout_is_a_live_tunable(upscaler: Any) -> None:
    assert upscaler.tile_layout == "balanced"
    upscaler.configure({"tile_layout": "fixed"})
    assert upscaler.tile_layout == "fixed"
    with pytest.raises(ValidationError, match="tile_layout\n  Input should be 'balanced' or 'fixed'"):
        upscaler.configure({"tile_layout": "spiral"})


def test_torch_threads_reach_the_thread_that_runs_the_forward_passes(upscaler: Any) -> None:
    before = torch.get_num_threads()
    try:
        upscaler.configure({"torch_threads": 1})
        assert upscaler._forward_thread.submit(torch.get_num_threads).result() == 1
    finally:
        upscaler.configure({"torch_threads": before})
    assert upscaler._forward_thread.submit(torch.get_num_threads).result() == before


def test_check_health_runs_the_model_on_the_forward_thread(upscaler: Any) -> None:
    asyncio.run(upscaler.check_health())
    upscaler._forward_thread.shutdown()
    with pytest.raises(deployment.UpscaleError, match="forward thread cannot run the model"):
        asyncio.run(upscaler.check_health())


def test_the_routed_models_are_the_default_and_its_specialists_at_its_scale() -> None:
    assert Catalog(load_settings(upscale_scale=2), []).routed == ["vcsr-m-x2", "vcsr-real-x2", "vcsr-jpeg-x2"]
    assert Catalog(load_settings(upscale_scale=4), []).routed == ["vcsr-m-x4", "vcsr-real-x4", "vcsr-jpeg-x4"]
    assert Catalog(load_settings(model_name="vcsr-real-x2"), []).routed == ["vcsr-real-x2", "vcsr-jpeg-x2"]


def test_the_real_world_model_is_the_one_whose_spec_says_so_whatever_its_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = replace(catalog_module.BUILTIN["vcsr-real-x4"], name="street-x4")
    named_like_one = replace(catalog_module.BUILTIN["vcsr-m-x4"], name="vcsr-real-x4", family="fidelity")
    monkeypatch.setattr(
        catalog_module,
        "BUILTIN",
        {"vcsr-m-x4": catalog_module.BUILTIN["vcsr-m-x4"], "vcsr-real-x4": named_like_one, "street-x4": real},
    )
    assert Catalog(load_settings(upscale_scale=4), []).routed == ["vcsr-m-x4", "street-x4"]


def test_a_model_whose_spec_says_jpeg_is_routed_as_the_jpeg_specialist_beside_the_real_world_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    jpeg = replace(catalog_module.BUILTIN["vcsr-real-x4"], name="jpeg-x4", family="jpeg")
    others = {n: s for n, s in catalog_module.BUILTIN.items() if n != "vcsr-jpeg-x4"}
    monkeypatch.setattr(catalog_module, "BUILTIN", {**others, "jpeg-x4": jpeg})
    catalog = Catalog(load_settings(upscale_scale=4), [])
    assert catalog.routed == ["vcsr-m-x4", "vcsr-real-x4", "jpeg-x4"]
    assert {m.name: m.routed_as for m in catalog.summaries()}["jpeg-x4"] == "jpeg"


def test_auto_scale_routes_both_families_at_both_scales() -> None:
    catalog = Catalog(load_settings(upscale_scale="auto"), [])
    assert catalog.default == "vcsr-m-x2"
    assert catalog.routed == ["vcsr-m-x2", "vcsr-real-x2", "vcsr-jpeg-x2", "vcsr-m-x4", "vcsr-real-x4", "vcsr-jpeg-x4"]
    assert len(catalog.routed) < deployment.MODELS_PER_REPLICA  # all stay loaded, with room for one more
    families = {m.name: (m.routed_as, m.scale) for m in catalog.summaries()}
    assert families["vcsr-m-x4"] == ("fidelity", 4) and families["vcsr-real-x2"] == ("real", 2)
    assert families["vcsr-jpeg-x2"] == ("jpeg", 2)
    assert families["vcsr-s-x2"] == (None, 2)


def test_forcing_int8_on_a_model_without_an_int8_build_fails_start_up_naming_the_fix(shared_dir: Path) -> None:
    settings = load_settings(model_path=anime(shared_dir).path, upscale_scale=4, precision="int8")
    with pytest.raises(PrecisionUnavailableError, match=r"realesr-animevideov3.*python -m models.quantize"):
        Upscaler.func_or_class(settings, [])


def test_the_result_names_the_precision_the_model_ran_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deployment, "UpscalerMetrics", NoMetrics)
    monkeypatch.setattr(deployment.serve, "get_multiplexed_model_id", lambda: "")
    image = DecodedImage(np.full((24, 24, 3), 128, np.uint8))
    for requested, expected in (("int8", "int8"), ("fp32", "float32")):
        upscaler = Upscaler.func_or_class(load_settings(upscale_scale=2, precision=requested), [])

        # Serve's multiplexing and batching need a replica: one model, one tile per pass here.
        async def default_engine(name: str, upscaler: Any = upscaler) -> Any:
            return upscaler.default_engine

        async def forward_one(job: Any) -> torch.Tensor:
            engine, tile = job
            return engine.run(tile[None])[0]  # type: ignore[no-any-return]

        monkeypatch.setattr(upscaler, "_engine", default_engine)
        monkeypatch.setattr(upscaler, "_forward_tiles", forward_one)
        result = asyncio.run(upscaler.upscale(image, "png"))
        assert (result.precision, result.model) == (expected, "vcsr-m-x2")


def served(monkeypatch: pytest.MonkeyPatch, settings: Any, entries: list[ModelEntry], model: str) -> Any:
    """An upscaler whose requests name ``model``; Serve's multiplexing and batching need a replica, so the
    model's engine is built directly and each tile runs on its own."""
    monkeypatch.setattr(deployment, "UpscalerMetrics", NoMetrics)
    monkeypatch.setattr(deployment.serve, "get_multiplexed_model_id", lambda: model)
    upscaler = Upscaler.func_or_class(settings, entries)

    async def engine(name: str) -> Any:
        return upscaler._build_engine(name)

    async def forward_one(job: Any) -> torch.Tensor:
        engine, tile = job
        return engine.run(tile[None])[0]  # type: ignore[no-any-return]

    monkeypatch.setattr(upscaler, "_engine", engine)
    monkeypatch.setattr(upscaler, "_forward_tiles", forward_one)
    return upscaler


def upscaled_pixels(upscaler: Any, image: DecodedImage, degradation: Degradation | None) -> np.ndarray[Any, Any]:
    result = asyncio.run(upscaler.upscale(image, "png", degradation))
    return np.asarray(Image.open(io.BytesIO(result.image.data)))


PHOTO = DecodedImage(np.random.default_rng(0).integers(0, 256, (20, 28, 3), dtype=np.uint8))
JPEG_30 = Degradation(jpeg_quality=30, noise=0.0)
NOISY = Degradation(jpeg_quality=None, noise=9.0)


def test_a_degradation_aware_model_upscales_with_the_uploads_measured_values(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    entry = ModelEntry(name="cond-x2", path=conditioned_model_file(tmp_path / "cond-x2.safetensors"))
    upscaler = served(monkeypatch, load_settings(upscale_scale=2, precision="fp32"), [entry], "cond-x2")
    network = load_model(entry.path, "cond-x2").module
    for degradation in (JPEG_30, NOISY):
        bound = Conditioned(network, condition_vector(CONDITIONED_X2, degradation.values()))  # type: ignore[arg-type]
        expected = Engine(bound, upscaler.catalog.infos["cond-x2"], torch.device("cpu")).upscale_image(PHOTO.pixels)
        assert np.array_equal(upscaled_pixels(upscaler, PHOTO, degradation), expected)
    assert not np.array_equal(upscaled_pixels(upscaler, PHOTO, JPEG_30), upscaled_pixels(upscaler, PHOTO, NOISY))
    # Nothing measured (a caller that sends pixels alone) is a clean upload.
    assert np.array_equal(upscaled_pixels(upscaler, PHOTO, None), upscaled_pixels(upscaler, PHOTO, Degradation()))


def test_a_plain_model_ignores_the_measured_values(monkeypatch: pytest.MonkeyPatch) -> None:
    upscaler = served(monkeypatch, load_settings(upscale_scale=2, precision="fp32"), [], "vcsr-m-x2")
    plain = upscaled_pixels(upscaler, PHOTO, None)
    assert np.array_equal(upscaled_pixels(upscaler, PHOTO, JPEG_30), plain)
    assert np.array_equal(upscaled_pixels(upscaler, PHOTO, NOISY), plain)


def test_the_catalogue_says_which_models_are_conditioned_and_on_what(tmp_path: Path) -> None:
    """The flow measures the full-scale noise again only for a model that reads it (ModelSummary.conditions)."""
    entry = ModelEntry(name="cond-x2", path=conditioned_model_file(tmp_path / "cond-x2.safetensors"))
    summaries = {m.name: m for m in Catalog(load_settings(), [entry]).summaries()}
    assert summaries["cond-x2"].conditions == ("jpeg_quality", "noise")
    assert summaries["vcsr-m-x2"].conditions == () and summaries["vcsr-real-x2"].conditions == ()


def test_a_degradation_aware_default_model_passes_the_health_check(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Its engine is built bound to a clean upload, so the probe (pixels alone) runs it: in PyTorch for a
    file without an int8 build, in int8 for the bundled JPEG specialist."""
    monkeypatch.setattr(deployment, "UpscalerMetrics", NoMetrics)
    path = conditioned_model_file(tmp_path / "cond-x2.safetensors")
    upscaler = Upscaler.func_or_class(load_settings(model_path=path, upscale_scale=2), [])
    asyncio.run(upscaler.check_health())
    assert upscaler.default_engine.precision in ("float32", "bfloat16")  # no int8 build beside it
    bundled = Upscaler.func_or_class(load_settings(model_name="vcsr-jpeg-x2", upscale_scale=2, precision="int8"), [])
    asyncio.run(bundled.check_health())
    assert bundled.default_engine.precision == "int8"


def test_forcing_int8_on_a_degradation_aware_model_without_an_int8_build_fails_start_up_saying_why(
    tmp_path: Path,
) -> None:
    path = conditioned_model_file(tmp_path / "cond-x2.safetensors")
    with pytest.raises(PrecisionUnavailableError, match="cond-x2.*no int8 model built from its weights"):
        Upscaler.func_or_class(load_settings(model_path=path, upscale_scale=2, precision="int8"), [])


def test_a_png_output_is_deflated_band_by_band_while_the_tiles_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bands whose rows are done go to the idle thread before the last tile is in; the file holds the
    model's exact pixels, with the upload's ICC profile. Other formats are encoded after the model."""
    monkeypatch.setattr("deployments.upscaler.png.BAND_BYTES", 1024)  # a small image still gets 16 bands
    upscaler = served(monkeypatch, load_settings(upscale_scale=2, precision="fp32"), [], "vcsr-m-x2")
    upscaler.tile_size = 64  # (configure would reach the batcher, which is replaced here)
    queued: list[int] = []
    rows = deployment.PngStream.rows

    def spy(stream: Any, pixels: Any, final: Any) -> None:
        rows(stream, pixels, final)
        queued.append(len(stream.bands) + len(stream.lefts))

    monkeypatch.setattr(deployment.PngStream, "rows", spy)
    image = DecodedImage(np.random.default_rng(3).integers(0, 256, (160, 64, 3), dtype=np.uint8), b"icc")
    result = asyncio.run(upscaler.upscale(image, "png"))
    assert max(queued) > 0  # bands left for the idle thread before the last tile
    expected = upscaler.default_engine.upscale_image(image.pixels, tile=64)
    written = Image.open(io.BytesIO(result.image.data))
    assert np.abs(np.asarray(written).astype(int) - expected.astype(int)).max() <= 1  # batched passes round apart
    assert written.info["icc_profile"] == b"icc"
    queued.clear()
    assert asyncio.run(upscaler.upscale(image, "jpeg")).image.content_type == "image/jpeg"
    assert queued == []
