from pathlib import Path

import pytest
import torch

from models.arch import VCSR, VCSRConfig
from models.loader import ModelLoadError, load_model, read_metadata, save_vcsr
from models.registry import BUILTIN, UnregisteredModelError, default_model_name, resolve


def test_vcsr_round_trips_through_safetensors(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = VCSR(VCSRConfig(scale=4, channels=8, blocks=2))
    torch.nn.init.normal_(model.tail.weight)
    path = tmp_path / "m.safetensors"
    save_vcsr(model, path, {"steps": "10"})
    loaded = load_model(path, "mine")
    assert loaded.info.name == "mine" and loaded.info.scale == 4 and loaded.info.architecture == "VCSR"
    assert loaded.info.tile_margin == 6
    assert read_metadata(path)["steps"] == "10"
    x = torch.rand(1, 3, 9, 9)
    with torch.no_grad():
        assert torch.equal(loaded.module.eval()(x), model.eval()(x))


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_bundled_model_loads_with_its_registered_config(name: str) -> None:
    spec = BUILTIN[name]
    loaded = load_model(spec.path, name)
    assert spec.config is not None and loaded.info.scale == spec.config.scale


def test_default_model_exists_for_each_scale() -> None:
    for scale in (2, 4):
        assert resolve(default_model_name(scale)).path.is_file()


def test_unknown_model_lists_the_valid_names() -> None:
    with pytest.raises(UnregisteredModelError, match="registered models: .*vcsr-s-x2"):
        resolve("nope")


def test_community_model_loads_through_spandrel(shared_dir: Path) -> None:
    loaded = load_model(shared_dir / "weights" / "realesr-animevideov3.pth")
    assert loaded.info.scale == 4 and loaded.info.architecture == "RealESRGAN Compact"
    with torch.no_grad():
        assert loaded.module(torch.rand(1, 3, 8, 8)).shape == (1, 3, 32, 32)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"not a model at all", ""), (b"", "")],
)
def test_a_file_that_cannot_be_loaded_names_the_file(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "broken.pth"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match="broken.pth"):
        load_model(path)


def test_a_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="missing.safetensors.*no such file"):
        load_model(tmp_path / "missing.safetensors")
