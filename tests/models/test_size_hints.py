"""spandrel's size and tiling hints survive loading and are honoured: a third-party network gets inputs
of the sides it asks for (padded, then cropped) and is not cut into tiles when it asks not to be."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import spandrel
import torch
from spandrel.architectures.SAFMN import SAFMN

from models.engine import UNTILED_TILES, Engine, ModelInfo
from models.loader import load_model

NEUTRAL = ModelInfo("m", "X", 2, 0, 4, True, True)


@pytest.fixture
def safmn_file(tmp_path: Path) -> Path:
    """A tiny SAFMN ×2 (spandrel: width and height must be multiples of 8), random weights."""
    torch.manual_seed(0)
    path = tmp_path / "safmn.pth"
    torch.save(SAFMN(dim=8, n_blocks=1, ffn_scale=2.0, upscaling_factor=2).state_dict(), path)
    return path


def test_the_loader_keeps_spandrels_size_requirements_and_tiling_hint(safmn_file: Path) -> None:
    info = load_model(safmn_file).info
    assert (info.architecture, info.min_size, info.size_multiple, info.square) == ("SAFMN", 0, 8, False)
    assert info.tiling == "supported"


def test_a_discouraged_tiling_hint_is_kept(safmn_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    descriptor = spandrel.ModelLoader().load_from_file(str(safmn_file))
    descriptor.tiling = spandrel.ModelTiling.DISCOURAGED
    monkeypatch.setattr(spandrel.ModelLoader, "load_from_file", lambda self, path: descriptor)
    assert load_model(safmn_file).info.tiling == "discouraged"


def test_the_engine_pads_to_the_models_multiple_as_spandrel_does(safmn_file: Path) -> None:
    loaded = load_model(safmn_file)
    engine = Engine(loaded.module, loaded.info, torch.device("cpu"))
    tiles = torch.randint(0, 256, (2, 3, 13, 10), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    out = engine.run(tiles)
    assert out.shape == (2, 3, 26, 20)
    descriptor = spandrel.ModelLoader().load_from_file(str(safmn_file))
    with torch.inference_mode():
        x = tiles.float() / 255
        by_spandrel = descriptor(x).clamp(0, 1).mul(255).round()  # spandrel pads and crops itself
        unpadded = descriptor.model(x).clamp(0, 1).mul(255).round()
    assert (out.float() - by_spandrel).abs().max() <= 1  # float rounding only
    assert (unpadded - by_spandrel).abs().max() > 1  # the padding matters to this network


@pytest.mark.parametrize(
    "hints", [{"min_size": 16}, {"size_multiple": 8}, {"min_size": 16, "size_multiple": 16}, {"square": True}]
)
def test_the_padding_is_spandrels(hints: dict[str, int]) -> None:
    info = replace(NEUTRAL, **hints)
    requirements = spandrel.SizeRequirements(minimum=info.min_size, multiple_of=info.size_multiple, square=info.square)
    for height in range(1, 40, 3):
        for width in range(1, 40, 5):
            pad_w, pad_h = requirements.get_padding(width, height)
            assert info.padding(height, width) == (pad_h, pad_w)


def passes(tiling: str, height: int, width: int, tile: int) -> list[tuple[int, ...]]:
    """The batch shapes an engine runs to upscale a ``height × width`` image with ``tile``-pixel tiles."""
    module = torch.nn.Upsample(scale_factor=2, mode="nearest")
    engine = Engine(module, replace(NEUTRAL, tiling=tiling), torch.device("cpu"))
    shapes: list[tuple[int, ...]] = []
    run = engine.run

    def recorded(tiles: torch.Tensor) -> torch.Tensor:
        shapes.append(tuple(tiles.shape))
        return run(tiles)

    engine.run = recorded  # type: ignore[method-assign]
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    assert np.array_equal(engine.upscale_image(image, tile=tile), image.repeat(2, 0).repeat(2, 1))
    return shapes


@pytest.mark.parametrize("tiling", ["discouraged", "internal"])
def test_a_model_that_asks_not_to_be_tiled_gets_the_whole_image_as_one_tile(tiling: str) -> None:
    assert UNTILED_TILES * 48 * 48 >= 90 * 70
    assert passes(tiling, 90, 70, tile=48) == [(1, 3, 90, 70)]
    assert sum(batch[0] for batch in passes("supported", 90, 70, tile=48)) > 1


def test_past_a_few_tiles_of_pixels_it_is_tiled_anyway() -> None:
    assert UNTILED_TILES * 48 * 48 < 200 * 200
    assert sum(batch[0] for batch in passes("discouraged", 200, 200, tile=48)) > 1
