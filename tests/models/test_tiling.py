import itertools

import pytest
import torch

from models.arch import VCSR, VCSRConfig
from models.tiling import cut, plan_axis, plan_tiles, stitch


@pytest.mark.parametrize("length", [1, 5, 64, 65, 100, 257, 1000, 1080, 1920])
@pytest.mark.parametrize(("tile", "margin"), [(64, 10), (128, 16), (256, 12)])
def test_kept_regions_partition_the_axis_and_stay_away_from_cut_edges(length: int, tile: int, margin: int) -> None:
    spans = plan_axis(length, tile, margin)
    assert spans[0].keep_start == 0 and spans[-1].keep_stop == length
    for before, after in itertools.pairwise(spans):
        assert before.keep_stop == after.keep_start
    for s in spans:
        assert s.stop - s.start == min(tile, length)
        assert 0 <= s.start <= s.keep_start < s.keep_stop <= s.stop <= length
        assert s.keep_start == 0 or s.keep_start - s.start >= margin
        assert s.keep_stop == length or s.stop - s.keep_stop >= margin


def test_tile_must_exceed_twice_the_margin() -> None:
    with pytest.raises(ValueError, match="must exceed twice the margin"):
        plan_axis(100, 20, 10)


def test_every_tile_of_a_large_image_has_the_same_shape() -> None:
    tiles = plan_tiles(1080, 1920, 256, 10)
    image = torch.zeros(3, 1080, 1920, dtype=torch.uint8)
    assert {tuple(c.shape) for c in cut(image, tiles)} == {(3, 256, 256)}


@pytest.mark.parametrize(("height", "width"), [(37, 53), (130, 90), (200, 333)])
def test_stitched_output_equals_untiled_output(height: int, width: int) -> None:
    torch.manual_seed(0)
    config = VCSRConfig(scale=2, channels=8, blocks=2)
    model = VCSR(config).eval()
    torch.nn.init.normal_(model.tail.weight, std=0.05)  # a zero tail would make the net bicubic
    image = torch.rand(3, height, width)
    tiles = plan_tiles(height, width, 48, config.receptive_radius)
    with torch.no_grad():
        whole = model(image[None])[0]
        parts = [model(c[None])[0] for c in cut(image, tiles)]
    stitched = stitch(parts, tiles, 2, height, width)
    assert len(tiles) > 1 or max(height, width) <= 48
    assert stitched.shape == whole.shape
    assert torch.allclose(stitched, whole, atol=1e-5)
