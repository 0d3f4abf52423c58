"""The upscaler deployment class outside Serve: model choice, live tunables, clear start-up errors.
(Its batching needs a real replica; tests/integration runs that.)"""

from pathlib import Path
from typing import Any

import pytest

import deployments.upscaler.deployment as deployment
from configs.settings import load_settings
from deployments.upscaler.deployment import Upscaler, load_engine
from models.loader import ModelLoadError


class NoMetrics:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


@pytest.fixture
def upscaler(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(deployment, "UpscalerMetrics", NoMetrics)  # Serve metrics need a replica
    return Upscaler.func_or_class(load_settings(upscale_scale=4))


def test_the_bundled_model_for_the_scale_is_loaded(upscaler: Any) -> None:
    assert upscaler.engine.info.name == "vcsr-s-x4" and upscaler.engine.scale == 4
    assert upscaler.unavailable_reason() is None


def test_user_config_is_applied_live(upscaler: Any) -> None:
    upscaler.reconfigure({"max_batch_size": 3, "batch_wait_timeout_s": 0.5, "tile_size": 128})
    assert upscaler._forward_tiles._get_max_batch_size() == 3
    assert upscaler._forward_tiles._get_batch_wait_timeout_s() == 0.5
    assert upscaler.tile_size == 128


def test_a_tile_too_small_for_the_model_is_refused(upscaler: Any) -> None:
    with pytest.raises(ValueError, match="tile_size=16 must exceed twice the model's margin"):
        upscaler.reconfigure({"tile_size": 16})


def test_a_model_of_another_scale_fails_start_up_naming_both(shared_dir: Path) -> None:
    path = shared_dir / "weights" / "realesr-animevideov3.pth"
    with pytest.raises(ValueError, match=r"upscales ×4 but UPSCALE_SCALE=2"):
        load_engine(load_settings(model_path=path, upscale_scale=2))


def test_a_community_model_file_is_served_by_path(shared_dir: Path) -> None:
    engine = load_engine(load_settings(model_path=shared_dir / "weights" / "realesr-animevideov3.pth", upscale_scale=4))
    assert engine.info.architecture == "RealESRGAN Compact" and engine.scale == 4


def test_an_unloadable_model_file_fails_start_up_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.pth"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(ModelLoadError, match="garbage.pth"):
        load_engine(load_settings(model_path=bad))
