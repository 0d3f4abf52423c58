"""Upscaling one image as independent tiles, so tiles of concurrent requests can share batches.

``upscale_pixels`` cuts each plane of the image into tiles, awaits ``forward_tile`` for every tile at
once (the deployment's ``@serve.batch`` method gathers them into batches with other requests' tiles)
and pastes each result, as it arrives, into one uint8 output (``upscaled_like``), allocated when the
first tile is done: a tile's output is freed as soon as it is pasted, and no full-size float,
channel-first or stitched copy of the image is ever made. ``run_grouped`` is the synchronous other
half, run in a worker thread: tiles of one model and shape stack into one forward pass; small images
bring shapes of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from models.engine import PlaneSink, TileEngine, split_planes, upscaled_like
from models.tiling import Tile, cut, plan_tiles

ForwardTile = Callable[[torch.Tensor], Awaitable[torch.Tensor]]
TileJob = tuple[TileEngine, torch.Tensor]


@dataclass(frozen=True)
class Final:
    """Which output pixels hold their final values: every column of rows ``[0, rows)``, and columns
    ``[0, cut)`` of rows ``[0, left_rows)``. ``cut`` is where the last column of tiles begins (0 for a
    single column, and then ``left_rows == rows``): the tiles left of it may finish a band's left part
    before the last column's tiles finish the band."""

    rows: int
    left_rows: int
    cut: int


RowsDone = Callable[[NDArray[np.uint8], Final], None]


def run_grouped(jobs: list[TileJob]) -> tuple[list[torch.Tensor], int]:
    """Outputs in the order of ``jobs``, and the number of forward passes: one per (model, tile shape)."""
    groups: dict[tuple[int, tuple[int, ...]], list[int]] = {}
    for i, (engine, tile) in enumerate(jobs):
        groups.setdefault((id(engine), tuple(tile.shape)), []).append(i)
    results: dict[int, torch.Tensor] = {}
    for indices in groups.values():
        engine = jobs[indices[0]][0]
        out = engine.run(torch.stack([jobs[i][1] for i in indices]))
        results.update(zip(indices, out.unbind(0), strict=True))
    return [results[i] for i in range(len(jobs))], len(groups)


class _Output:
    """The upscaled image, allocated when the first tile's output arrives: a request whose tiles still
    wait behind other requests' tiles holds no full-size memory yet."""

    def __init__(self, like: NDArray[np.uint8], scale: int) -> None:
        self.like, self.scale = like, scale
        self.pixels: NDArray[np.uint8] | None = None
        self._sinks: list[PlaneSink] = []

    def sink(self, plane: int) -> PlaneSink:
        if self.pixels is None:
            self.pixels, self._sinks = upscaled_like(self.like, self.scale)
        return self._sinks[plane]


class _FinalRows:
    """Which output pixels hold their final values (``Final``): rows above the first row that a tile still
    pending (of any plane) owns, and, left of the last column of tiles, rows above the first row that a
    pending tile outside that column owns. ``on_rows(pixels, final)`` hears each time either grows."""

    def __init__(self, height: int, cut: int, on_rows: RowsDone | None) -> None:
        self.height, self.cut, self.on_rows = height, cut, on_rows
        self.pending: dict[tuple[int, int], tuple[int, bool]] = {}  # (plane, tile) → (first row, left of cut)
        self.final = Final(0, 0, cut)

    def expect(self, plane: int, tiles: list[Tile], scale: int) -> None:
        for i, tile in enumerate(tiles):
            self.pending[(plane, i)] = (scale * tile.rows.keep_start, scale * tile.cols.keep_start < self.cut)

    def done(self, plane: int, tile: int, pixels: NDArray[np.uint8]) -> None:
        del self.pending[(plane, tile)]
        rows = min((row for row, _ in self.pending.values()), default=self.height)
        left_rows = min((row for row, left in self.pending.values() if left), default=self.height)
        final = Final(rows, left_rows if self.cut else rows, self.cut)
        if final != self.final:
            self.final = final
            if self.on_rows is not None:
                self.on_rows(pixels, final)


async def _upscale_plane(
    plane: torch.Tensor,
    index: int,
    tiles: list[Tile],
    output: _Output,
    forward_tile: ForwardTile,
    rows: _FinalRows,
) -> int:
    async def one(i: int, crop: torch.Tensor, tile: Tile) -> None:
        upscaled = await forward_tile(crop)
        output.sink(index).put(upscaled, tile, output.scale)
        assert output.pixels is not None
        rows.done(index, i, output.pixels)

    crops = cut(plane, tiles)
    await asyncio.gather(*(one(i, crop, tile) for i, (crop, tile) in enumerate(zip(crops, tiles, strict=True))))
    return len(tiles)


async def upscale_pixels(
    pixels: NDArray[np.uint8],
    forward_tile: ForwardTile,
    tile_size: int,
    margin: int,
    scale: int,
    layout: str = "balanced",
    on_rows: RowsDone | None = None,
) -> tuple[NDArray[np.uint8], int]:
    """The upscaled image laid out like ``pixels`` (L, RGB or RGBA), and how many tiles it took.
    ``on_rows(output, final)`` is called, in the event loop, each time more of the output holds its final
    pixels (``Final``; the last call with every row), so that work on them (the encoder's bands) can
    start while later tiles are still upscaled."""
    output = _Output(pixels, scale)
    planes = split_planes(pixels)
    plans = [plan_tiles(int(p.shape[1]), int(p.shape[2]), tile_size, margin, layout) for p in planes]
    rows = _FinalRows(scale * int(pixels.shape[0]), scale * plans[0][-1].cols.keep_start, on_rows)
    for i, tiles in enumerate(plans):
        rows.expect(i, tiles, scale)
    jobs = zip(planes, plans, strict=True)
    counts = await asyncio.gather(
        *(_upscale_plane(plane, i, tiles, output, forward_tile, rows) for i, (plane, tiles) in enumerate(jobs))
    )
    assert output.pixels is not None  # every plane has at least one tile
    return output.pixels, sum(counts)
