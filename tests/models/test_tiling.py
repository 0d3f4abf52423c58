import itertools

import pytest
import torch

from models.arch import VCSR, VCSRConfig
from models.tiling import cut, plan_axis, plan_tiles, stitch


@pytest.mark.parametrize("length", [1, 5, 64, 65, 100, 257, 1000, 1080, 1920])
@pytest.mark.parametrize(("tile", "margin"), [(64, 10), (128, 16), (256, 12), (512, 18)])
@pytest.mark.parametrize("layout", ["fixed", "balanced"])
def test_kept_regions_partition_the_axis_and_stay_away_from_cut_edges(
    length: int, tile: int, margin: int, layout: str
) -> None:
    spans = plan_axis(length, tile, margin, layout)
    assert spans[0].keep_start == 0 and spans[-1].keep_stop == length
    for before, after in itertools.pairwise(spans):
        assert before.keep_stop == after.keep_start
    sizes = {s.stop - s.start for s in spans}
    assert len(sizes) == 1  # one image's tiles stack into one batch
    assert sizes == {min(tile, length)} if layout == "fixed" else max(sizes) <= min(tile, length)
    for s in spans:
        assert 0 <= s.start <= s.keep_start < s.keep_stop <= s.stop <= length
        assert s.keep_start == 0 or s.keep_start - s.start >= margin
        assert s.keep_stop == length or s.stop - s.keep_stop >= margin


def test_tile_must_exceed_twice_the_margin() -> None:
    with pytest.raises(ValueError, match="must exceed twice the margin"):
        plan_axis(100, 20, 10)


def test_balanced_tiles_compute_fewer_pixels_and_overlap_only_by_the_margin() -> None:
    for length in range(300, 4000, 7):
        fixed, balanced = plan_axis(length, 256, 18, "fixed"), plan_axis(length, 256, 18, "balanced")
        assert len(balanced) == len(fixed)
        assert sum(s.stop - s.start for s in balanced) <= sum(s.stop - s.start for s in fixed)
        for before, after in itertools.pairwise(balanced):
            assert 2 * 18 <= before.stop - after.start <= 2 * 18 + 1


def test_an_unknown_layout_is_refused() -> None:
    with pytest.raises(ValueError, match="balanced, fixed"):
        plan_axis(1000, 256, 10, "diagonal")


def test_every_tile_of_a_large_image_has_the_same_shape() -> None:
    tiles = plan_tiles(1080, 1920, 256, 10)
    image = torch.zeros(3, 1080, 1920, dtype=torch.uint8)
    assert {tuple(c.shape) for c in cut(image, tiles)} == {(3, 256, 256)}


@pytest.mark.parametrize(("height", "width"), [(37, 53), (130, 90), (200, 333)])
@pytest.mark.parametrize("layout", ["fixed", "balanced"])
def test_stitched_output_equals_untiled_output(height: int, width: int, layout: str) -> None:
    torch.manual_seed(0)
    config = VCSRConfig(scale=2, channels=8, blocks=2)
    model = VCSR(config).eval()
    torch.nn.init.normal_(model.tail.weight, std=0.05)  # a zero tail would make the net bicubic
    image = torch.rand(3, height, width)
    tiles = plan_tiles(height, width, 48, config.receptive_radius, layout)
    with torch.no_grad():
        whole = model(image[None])[0]
        parts = [model(c[None])[0] for c in cut(image, tiles)]
    stitched = stitch(parts, tiles, 2, height, width)
    assert len(tiles) > 1 or max(height, width) <= 48
    assert stitched.shape == whole.shape
    assert torch.allclose(stitched, whole, atol=1e-5)
