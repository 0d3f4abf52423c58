import asyncio
from itertools import pairwise

import numpy as np
import pytest
import torch

from deployments.upscaler.tiler import Final, run_grouped, upscale_pixels
from models.tiling import plan_tiles
from tests.models.test_engine import make_engine


def test_run_grouped_keeps_the_order_across_models_and_shapes() -> None:
    engine = make_engine()
    tiles = [torch.randint(0, 256, shape, dtype=torch.uint8) for shape in [(3, 8, 8), (3, 5, 7), (3, 8, 8)]]
    other = make_engine(4)
    out, passes = run_grouped([(engine, tiles[0]), (engine, tiles[1]), (other, tiles[2]), (engine, tiles[2])])
    assert passes == 3  # (engine, 8×8) twice in one pass, (engine, 5×7), (other, 8×8)
    assert [tuple(t.shape) for t in out] == [(3, 16, 16), (3, 10, 14), (3, 32, 32), (3, 16, 16)]
    assert torch.equal(out[3], engine.run(tiles[2][None])[0])
    assert torch.equal(out[2], other.run(tiles[2][None])[0])


@pytest.mark.parametrize("shape", [(70, 90), (70, 90, 3), (70, 90, 4)])
def test_async_tiles_stitch_to_the_synchronous_result(shape: tuple[int, ...]) -> None:
    engine = make_engine()
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    calls: list[int] = []

    async def forward_tile(tile: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return run_grouped([(engine, tile)])[0][0]

    out, tiles = asyncio.run(upscale_pixels(image, forward_tile, 32, engine.info.tile_margin, engine.scale))
    assert out.shape == (140, 180, *shape[2:])
    assert tiles == len(calls) > 1
    # Batched and single forward passes may round one level apart, never more.
    assert np.abs(out.astype(int) - engine.upscale_image(image, tile=32).astype(int)).max() <= 1


@pytest.mark.parametrize("shape", [(70, 90, 3), (70, 90, 4)])
def test_pixels_are_reported_final_as_the_tiles_that_own_them_arrive_out_of_order(shape: tuple[int, ...]) -> None:
    """Tiles come back in any order; a row (or its part left of the last column of tiles) is reported only
    once every tile of every plane that owns part of it is pasted, the counts only grow, and the pixels
    reported never change afterwards."""
    engine = make_engine()
    image = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    reported: list[tuple[Final, np.ndarray, np.ndarray]] = []
    plan = plan_tiles(70, 90, 32, engine.info.tile_margin, "balanced")
    last_column = [tile.cols == plan[-1].cols for tile in plan]
    jitter = np.random.default_rng(2).uniform(0, 0.012, 100)
    asked = iter(range(100))

    async def forward_tile(tile: torch.Tensor) -> torch.Tensor:
        k = next(asked)  # roughly top to bottom, neighbours shuffled, each plane in turn, the last column late
        await asyncio.sleep(0.004 * (k % len(plan)) + jitter[k] + 0.03 * last_column[k % len(plan)])
        return run_grouped([(engine, tile)])[0][0]

    def on_rows(output: np.ndarray, final: Final) -> None:
        reported.append((final, output[: final.rows].copy(), output[: final.left_rows, : final.cut].copy()))

    out, _ = asyncio.run(
        upscale_pixels(image, forward_tile, 32, engine.info.tile_margin, engine.scale, on_rows=on_rows)
    )
    finals = [final for final, _, _ in reported]
    assert {final.cut for final in finals} == {2 * plan[-1].cols.keep_start} and finals[0].cut > 0
    assert finals[-1].rows == out.shape[0] and len(finals) > 2
    for before, after in pairwise(finals):
        assert (before.rows, before.left_rows) != (after.rows, after.left_rows)
        assert before.rows <= after.rows and before.left_rows <= after.left_rows
    assert all(final.rows <= final.left_rows for final in finals)
    assert any(final.rows < final.left_rows for final in finals)  # a left part done before its row
    for final, rows, left in reported:
        assert np.array_equal(rows, out[: final.rows])
        assert np.array_equal(left, out[: final.left_rows, : final.cut])


def test_a_single_column_of_tiles_has_no_left_part() -> None:
    engine = make_engine()
    image = np.random.default_rng(3).integers(0, 256, (70, 20, 3), dtype=np.uint8)
    finals: list[Final] = []

    async def forward_tile(tile: torch.Tensor) -> torch.Tensor:
        return run_grouped([(engine, tile)])[0][0]

    asyncio.run(
        upscale_pixels(
            image, forward_tile, 32, engine.info.tile_margin, engine.scale, on_rows=lambda _, f: finals.append(f)
        )
    )
    assert finals and all(final.cut == 0 and final.left_rows == final.rows for final in finals)
