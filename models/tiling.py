"""Cutting images into overlapping tiles and stitching the results seamlessly.

Two layouts. ``fixed``: every tile is ``tile × tile`` input pixels (an image smaller than that along
an axis becomes one tile of its own length there), so tiles from images of any size stack into one
uniform batch — what a GPU with compiled or graph-captured fixed shapes wants. ``balanced``: as few
tiles as ``tile`` allows, all of one image the same size, spread evenly so neighbours overlap by the
margin and no more — what a CPU wants, where every overlapping pixel is computed twice (a 1080p image
in 256-px fixed tiles computes ~1.5× its pixels; balanced 512-px tiles ~1.13×).

Neighbouring tiles overlap by at least ``2·margin``; each output pixel is taken from the tile in
which it lies at least ``margin`` input pixels from a cut edge. With ``margin`` ≥ the network's
receptive radius the stitched output equals the untiled output up to floating-point rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product

import torch

# The service's input tile side. CPU: the engine is as fast on 1024² tiles as on 512² ones (1.23–1.24
# MP/s, bench.engine --tile), so tiles are large to recompute little overlap: a 1080p frame in 1024-px
# balanced tiles computes 1.05× its pixels, in 512-px tiles 1.13×. Here, not in the upscaler
# deployment, so that benchmarks import it without Ray.
DEFAULT_TILE_SIZE = 1024


@dataclass(frozen=True)
class Span:
    """One tile's extent along an axis: it reads ``[start, stop)`` and owns ``[keep_start, keep_stop)``."""

    start: int
    stop: int
    keep_start: int
    keep_stop: int


@dataclass(frozen=True)
class Tile:
    rows: Span
    cols: Span


LAYOUTS = ("balanced", "fixed")


def plan_axis(length: int, tile: int, margin: int, layout: str = "fixed") -> list[Span]:
    if length < 1:
        raise ValueError(f"cannot tile an axis of length {length}")
    if tile <= 2 * margin:
        raise ValueError(f"tile size {tile} must exceed twice the margin {margin}")
    if layout not in LAYOUTS:
        raise ValueError(f"tile layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if length <= tile:
        return [Span(0, length, 0, length)]
    if layout == "fixed":
        stride = tile - 2 * margin
        starts = [*range(0, length - tile, stride), length - tile]
    else:
        # n tiles of the smallest size that covers the axis; even steps of at most size − 2·margin.
        n = math.ceil((length - 2 * margin) / (tile - 2 * margin))
        tile = math.ceil((length - 2 * margin) / n) + 2 * margin
        starts = [i * (length - tile) // (n - 1) for i in range(n)]
    spans: list[Span] = []
    for i, start in enumerate(starts):
        stop = start + tile
        keep_start = 0 if i == 0 else spans[-1].keep_stop
        # The boundary sits in the middle of the overlap, ≥ margin from both tiles' cut edges.
        keep_stop = length if i == len(starts) - 1 else (starts[i + 1] + stop) // 2
        spans.append(Span(start, stop, keep_start, keep_stop))
    return spans


def plan_tiles(height: int, width: int, tile: int, margin: int, layout: str = "fixed") -> list[Tile]:
    """Tiles covering a ``height × width`` image, row-major."""
    rows, cols = plan_axis(height, tile, margin, layout), plan_axis(width, tile, margin, layout)
    return [Tile(r, c) for r, c in product(rows, cols)]


def cut(image: torch.Tensor, tiles: list[Tile]) -> list[torch.Tensor]:
    """Views of ``image`` (``C×H×W``) for each tile; no pixels are copied."""
    return [image[:, t.rows.start : t.rows.stop, t.cols.start : t.cols.stop] for t in tiles]


def owned(tile: Tile, scale: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Where the output pixels a tile owns lie: ``(rows, cols)`` in the whole upscaled image, and
    ``(rows, cols)`` in the tile's own upscaled output."""
    r, c = tile.rows, tile.cols
    return (
        (slice(scale * r.keep_start, scale * r.keep_stop), slice(scale * c.keep_start, scale * c.keep_stop)),
        (
            slice(scale * (r.keep_start - r.start), scale * (r.keep_stop - r.start)),
            slice(scale * (c.keep_start - c.start), scale * (c.keep_stop - c.start)),
        ),
    )


def paste(canvas: torch.Tensor, output: torch.Tensor, tile: Tile, scale: int) -> None:
    """Copy the part of one upscaled tile (``C×(s·h)×(s·w)``) it owns into ``canvas`` (``C×(s·H)×(s·W)``,
    any strides: a view of a preallocated ``H×W×C`` image works, so no second full-size copy is made)."""
    (rows, cols), (tile_rows, tile_cols) = owned(tile, scale)
    canvas[:, rows, cols] = output[:, tile_rows, tile_cols]


def stitch(outputs: list[torch.Tensor], tiles: list[Tile], scale: int, height: int, width: int) -> torch.Tensor:
    """Assemble upscaled tiles (``C×(s·h)×(s·w)`` each) into the ``C×(s·H)×(s·W)`` image."""
    if len(outputs) != len(tiles) or not outputs:
        raise ValueError(f"{len(outputs)} outputs for {len(tiles)} tiles")
    first = outputs[0]
    canvas = first.new_empty((first.shape[0], scale * height, scale * width))
    for out, t in zip(outputs, tiles, strict=True):
        paste(canvas, out, t, scale)
    return canvas
