"""The upscaler deployment class outside Serve: its catalogue, live tunables, clear start-up errors.
(Its batching and multiplexing need a real replica; tests/integration runs those.)"""

from pathlib import Path
from typing import Any

import pytest

import deployments.upscaler.deployment as deployment
from configs.model_registry import ModelEntry
from configs.settings import load_settings
from deployments.upscaler.catalog import Catalog
from deployments.upscaler.deployment import Upscaler
from models.loader import ModelLoadError
from models.registry import UnknownModelError


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
    assert upscaler.default_engine.info.name == "vcsr-s-x4" and upscaler.default_engine.scale == 4
    assert upscaler.unavailable_reason() is None


def test_user_config_is_applied_live(upscaler: Any) -> None:
    upscaler.reconfigure({"max_batch_size": 3, "batch_wait_timeout_s": 0.5, "tile_size": 128})
    assert upscaler._forward_tiles._get_max_batch_size() == 3
    assert upscaler._forward_tiles._get_batch_wait_timeout_s() == 0.5
    assert upscaler.tile_size == 128


def test_a_tile_too_small_for_the_models_is_refused(upscaler: Any) -> None:
    with pytest.raises(ValueError, match="tile_size=16 must exceed twice the largest model margin"):
        upscaler.reconfigure({"tile_size": 16})


def test_the_catalogue_lists_bundled_and_registered_models(shared_dir: Path) -> None:
    catalog = Catalog(load_settings(), [anime(shared_dir)])
    summaries = {m.name: m for m in catalog.summaries()}
    assert set(summaries) == {"vcsr-s-x2", "vcsr-s-x4", "anime"}
    assert summaries["vcsr-s-x2"].default and summaries["vcsr-s-x2"].psnr["Set5"] > 35
    assert summaries["anime"].scale == 4 and summaries["anime"].architecture == "RealESRGAN Compact"
    assert summaries["anime"].file_bytes == (shared_dir / "weights" / "realesr-animevideov3.pth").stat().st_size
    assert catalog.resolve(None) == "vcsr-s-x2" and catalog.resolve("anime") == "anime"
    with pytest.raises(UnknownModelError, match="anime, vcsr-s-x2, vcsr-s-x4"):
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
    with pytest.raises(UnknownModelError, match="vcsr-s-x2"):
        Catalog(load_settings(model_name="missing"), [])


def test_an_unloadable_registered_file_fails_start_up_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.pth"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(ModelLoadError, match="garbage.pth"):
        Catalog(load_settings(), [ModelEntry(name="garbage", path=bad)])
