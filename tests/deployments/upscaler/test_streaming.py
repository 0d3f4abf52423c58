import asyncio
import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image

from deployments.upscaler import streaming
from deployments.upscaler.png import BandedPng, split_rows
from deployments.upscaler.streaming import PngStream, idle_executor
from deployments.upscaler.tiler import Final, run_grouped, upscale_pixels
from models.tiling import plan_tiles
from tests.models.test_engine import make_engine


@pytest.fixture(autouse=True)
def small_bands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("deployments.upscaler.png.BAND_BYTES", 1024)  # test-sized images still get 16 bands


def photo(height: int = 96, width: int = 80, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(np.cumsum(rng.integers(-6, 7, (height, width, channels)), axis=1) + 128, 0, 255).astype(np.uint8)


def same_file_as_banded(pixels: np.ndarray, data: bytes, cut: int = 0) -> bool:
    bounds = split_rows(pixels.shape[0], pixels.shape[1] * pixels.shape[2], streaming.STREAM_BANDS)
    writer = BandedPng(pixels, bounds, cut=cut)
    return data == writer.finish([writer.band(i) for i in range(writer.bands)])


def test_the_idle_thread_runs_under_sched_idle() -> None:
    pool = idle_executor()
    assert pool is not None  # Linux
    assert pool.submit(os.sched_getscheduler, 0).result() == os.SCHED_IDLE
    assert os.sched_getscheduler(0) != os.SCHED_IDLE  # the caller's own thread is untouched
    pool.shutdown()


def test_bands_are_queued_as_their_rows_become_final_and_finish_makes_the_rest() -> None:
    pixels = photo()
    idle = ThreadPoolExecutor(1)
    stream = PngStream(idle, 1, None, None, threads=2)
    stream.rows(pixels, Final(30, 30, 0))  # 96 rows in 16 bands of 6: rows 0-29 complete five
    assert sorted(stream.bands) == list(range(5))
    stream.rows(pixels, Final(60, 60, 0))
    assert sorted(stream.bands) == list(range(10))
    stream.rows(pixels, Final(96, 96, 0))  # the last tile's bands are left to finish, at normal priority
    assert sorted(stream.bands) == list(range(10)) and stream.lefts == {}
    for future in stream.bands.values():
        future.result()
    data = stream.finish(pixels)
    assert same_file_as_banded(pixels, data)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), pixels)
    assert stream.bands == stream.lefts == {}


def test_with_a_cut_a_bands_left_piece_is_queued_before_the_band_is_final(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the tiles have two columns, the left tiles finish the left part of rows whose right part
    the last column still owes: those pieces go to the idle thread, and finish makes only the right ones."""
    pixels = photo()
    idle = ThreadPoolExecutor(1)
    stream = PngStream(idle, 1, None, None, threads=2)
    stream.rows(pixels, Final(0, 48, 40))  # the top-left tile is back: the left half of bands 0-7
    assert sorted(stream.lefts) == list(range(8)) and stream.bands == {}
    stream.rows(pixels, Final(48, 96, 40))  # then the bottom-left and top-right tiles
    assert sorted(stream.lefts) == list(range(16)) and sorted(stream.bands) == list(range(8))
    for future in [*stream.lefts.values(), *stream.bands.values()]:
        future.result()
    pieces: list[tuple[int, int]] = []
    piece = BandedPng._piece
    monkeypatch.setattr(BandedPng, "_piece", lambda writer, i, side: pieces.append((i, side)) or piece(writer, i, side))
    data = stream.finish(pixels)
    assert sorted(pieces) == [(i, 1) for i in range(8, 16)]  # finish made only the last column's pieces
    assert same_file_as_banded(pixels, data, cut=40) and not same_file_as_banded(pixels, data)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), pixels)


def test_finish_never_waits_for_a_starved_idle_thread() -> None:
    """On a replica busy with other requests' tiles the idle thread may not run for seconds: finish makes
    the bands it has not delivered itself, the same bytes, without waiting for it."""
    pixels = photo(channels=4)
    idle = ThreadPoolExecutor(1)
    starved = threading.Event()
    idle.submit(starved.wait)  # the idle thread is taken: every band queued behind it waits
    stream = PngStream(idle, 2, b"profile", None, threads=2)
    stream.rows(pixels, Final(50, 70, 40))
    queued = [*stream.lefts.values(), *stream.bands.values()]
    data = stream.finish(pixels)
    assert all(f.cancelled() for f in queued)
    starved.set()
    idle.shutdown()
    decoded = Image.open(io.BytesIO(data))
    assert np.array_equal(np.asarray(decoded), pixels) and decoded.info["icc_profile"] == b"profile"


def test_a_new_output_array_starts_the_stream_afresh() -> None:
    """The tiler's retry with smaller tiles writes a new array: bands of the old one must not be used."""
    first, second = photo(), photo()[::-1].copy()
    idle = ThreadPoolExecutor(1)
    stream = PngStream(idle, 1, None, None, threads=1)
    stream.rows(first, Final(48, 48, 0))
    for future in stream.bands.values():
        future.result()
    data = stream.finish(second)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), second)


def test_with_the_tiler_bands_are_deflated_before_the_last_tile_is_back() -> None:
    engine = make_engine()
    image = photo(64, 48)
    plan = plan_tiles(64, 48, 24, engine.info.tile_margin, "balanced")
    idle = ThreadPoolExecutor(1)
    stream = PngStream(idle, 1, None, None, threads=2)
    asked = iter(range(1000))
    before_last: list[tuple[set[int], set[int]]] = []

    async def forward_tile(tile: torch.Tensor) -> torch.Tensor:
        await asyncio.sleep(0.01 * next(asked))  # tiles back in plan order, one every 10 ms
        return run_grouped([(engine, tile)])[0][0]

    async def run() -> np.ndarray:
        out, _ = await upscale_pixels(
            image, forward_tile, 24, engine.info.tile_margin, engine.scale, on_rows=stream.rows
        )
        before_last.append(
            ({i for i, f in stream.lefts.items() if f.done()}, {i for i, f in stream.bands.items() if f.done()})
        )
        return out

    out = asyncio.run(run())
    # Every band's left piece, and whole rows above the last row of tiles, deflated while the model still ran.
    lefts, bands = before_last[0]
    assert lefts | bands == set(range(16)) and len(bands) >= 8
    data = stream.finish(out)
    assert same_file_as_banded(out, data, cut=engine.scale * plan[-1].cols.keep_start)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), out)
