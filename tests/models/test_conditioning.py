"""Binding a degradation-aware network to one image's measured values, behind the unchanged engine contract."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.arch import Conditioned, condition_vector
from models.conditioning import UnboundableEngineError, bind, network
from models.engine import Engine, TileEngine
from models.loader import load_model
from models.registry import BUILTIN
from tests.tiny_models import CONDITIONED_X2, conditioned_model_file

CPU = torch.device("cpu")
TILES = torch.randint(0, 256, (2, 3, 12, 10), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
JPEG_30 = {"jpeg_quality": 30, "noise": 0.0}
NOISY_PNG = {"jpeg_quality": None, "noise": 8.0}


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    loaded = load_model(conditioned_model_file(tmp_path / "c.safetensors"), "c")
    return Engine(loaded.module, loaded.info, CPU)


def test_the_loaded_model_says_what_it_is_conditioned_on(engine: Engine) -> None:
    assert engine.info.conditions == ("jpeg_quality", "noise")
    assert load_model(BUILTIN["vcsr-m-x2"].path).info.conditions == ()


def test_a_bound_engine_runs_the_network_with_the_images_values(engine: Engine) -> None:
    model = network(engine)
    expected = Engine(Conditioned(model, condition_vector(CONDITIONED_X2, JPEG_30)), engine.info, CPU).run(TILES)
    assert torch.equal(bind(engine, JPEG_30).run(TILES), expected)


def test_images_measured_differently_are_upscaled_differently(engine: Engine) -> None:
    outputs = [bind(engine, values).run(TILES) for values in (JPEG_30, NOISY_PNG, {})]
    assert not torch.equal(outputs[0], outputs[1]) and not torch.equal(outputs[1], outputs[2])


def test_missing_values_mean_a_clean_upload(engine: Engine) -> None:
    clean = bind(engine, {"jpeg_quality": None, "noise": 0.0}).run(TILES)
    assert torch.equal(bind(engine, {}).run(TILES), clean)


def test_rebinding_binds_the_network_and_shares_its_weights(engine: Engine) -> None:
    bound = bind(bind(engine, NOISY_PNG), JPEG_30)
    assert torch.equal(bound.run(TILES), bind(engine, JPEG_30).run(TILES))
    assert isinstance(bound, Engine) and isinstance(bound.module, Conditioned)
    assert bound.module.model is engine.module  # no copy of the weights
    assert (bound.info, bound.dtype, bound.device) == (engine.info, engine.dtype, engine.device)


def test_a_bf16_engine_stays_bf16_when_bound(tmp_path: Path) -> None:
    loaded = load_model(conditioned_model_file(tmp_path / "c.safetensors"), "c")
    bound = bind(Engine(loaded.module, loaded.info, CPU, torch.bfloat16), JPEG_30)
    assert bound.precision == "bfloat16" and bound.run(TILES).shape == (2, 3, 24, 20)


def test_a_plain_models_engine_is_returned_as_it_is() -> None:
    loaded = load_model(BUILTIN["vcsr-m-x2"].path)
    plain = Engine(loaded.module, loaded.info, CPU)
    assert bind(plain, JPEG_30) is plain


class PixelsOnly(TileEngine):
    """An engine that takes pixels alone, like the int8 runtime."""

    def __init__(self, engine: Engine) -> None:
        self.info, self.device, self.dtype = engine.info, CPU, torch.int8

    def run(self, tiles: torch.Tensor) -> torch.Tensor:
        raise AssertionError("never run")


def test_a_conditioned_model_in_an_engine_that_cannot_take_the_values_is_refused(engine: Engine) -> None:
    with pytest.raises(UnboundableEngineError, match=r"'c' is conditioned on jpeg_quality, noise .*PRECISION=auto"):
        bind(PixelsOnly(engine), JPEG_30)
