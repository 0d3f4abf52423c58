"""A large PNG deflated while the model still upscales its later tiles, on cycles the forward pass leaves idle.

The forward pass keeps the cores about 90 % busy: between its passes the replica's event loop pastes
tiles and the batcher waits, and one core idles. ``PngStream`` cuts the output into ``STREAM_BANDS``
bands (``png.BandedPng``) and hands each band to one worker thread as soon as the tiler reports its rows
final (``tiler.upscale_pixels``'s ``on_rows``). That thread runs under ``SCHED_IDLE``: the kernel gives
it a core only when no other thread wants one, so it fills the forward pass's gaps and never takes a
core from it (a preempted OpenMP thread would stall the other at the next barrier). Where the tiles
have more than one column, each band is cut where the last column begins (``png.BandedPng``'s ``cut``)
and its left piece is handed over as soon as the tiles left of the cut are in, so that after the model
only the last column's pieces of the last row's bands are left.

``finish`` runs once the last tile is in: it keeps the bands the idle thread has finished and deflates
every other band itself, at normal priority, on ``threads`` threads. A band the idle thread is still on
is deflated again rather than waited for (a starved idle thread, on a replica busy with other requests'
tiles, must never delay this one); band encoding is pure, so the file's bytes are the same whichever
thread made each band. Without ``SCHED_IDLE`` (not Linux) nothing is streamed.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from numpy.typing import NDArray

from deployments.upscaler.png import Band, BandedPng, Piece, split_rows
from deployments.upscaler.tiler import Final

log = logging.getLogger("ray.serve")

STREAM_BANDS = 16  # an 8K ×4 output: 16 bands of 6 MB; what is left after the model is about one band


def _run_when_idle() -> bool:
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # 0: this thread only
    except (AttributeError, OSError) as exc:
        log.info("no SCHED_IDLE thread (%s): PNG outputs are deflated after the model", exc)
        return False
    return True


def idle_executor() -> ThreadPoolExecutor | None:
    """One worker thread that runs only on otherwise idle cores, or None where the system has no such
    policy."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="png-idle")
    if pool.submit(_run_when_idle).result():
        return pool
    pool.shutdown()
    return None


def _band(writer: BandedPng, i: int, left: Future[Piece] | None) -> Band:
    """Band ``i``, with the left piece the idle thread made if it is done (never waiting for it)."""
    piece = left.result() if left is not None and left.done() and not left.cancelled() else None
    return writer.band(i, piece)


class PngStream:
    """One upscale's PNG, its bands deflated on ``idle`` as their pixels become final (``rows``, the
    tiler's ``on_rows``) and the rest by ``finish``. Where the tiles have more than one column, each band
    is cut where the last column begins, so that its left piece goes to the idle thread before the last
    column's tiles are back. A new output array (the tiler's retry with smaller tiles) starts the stream
    afresh."""

    def __init__(
        self, idle: ThreadPoolExecutor, level: int, icc_profile: bytes | None, exif: bytes | None, threads: int
    ) -> None:
        self.idle, self.level, self.icc_profile, self.exif, self.threads = idle, level, icc_profile, exif, threads
        self.writer: BandedPng | None = None
        self.lefts: dict[int, Future[Piece]] = {}  # band → its left piece
        self.bands: dict[int, Future[Band]] = {}  # band → the band

    def _writer_for(self, pixels: NDArray[np.uint8], cut: int = 0) -> BandedPng:
        if self.writer is None or self.writer.pixels is not pixels:
            self.abandon()
            channels = 1 if pixels.ndim == 2 else int(pixels.shape[2])
            bounds = split_rows(int(pixels.shape[0]), int(pixels.shape[1]) * channels, STREAM_BANDS)
            self.writer = BandedPng(pixels, bounds, self.level, self.icc_profile, self.exif, cut)
        return self.writer

    def rows(self, pixels: NDArray[np.uint8], final: Final) -> None:
        """``final`` says which pixels of ``pixels`` hold their final values: queue the bands, and the
        bands' left pieces, they complete. What the last tile completes is left to ``finish``, which runs
        at once at normal priority."""
        writer = self._writer_for(pixels, final.cut)
        if final.rows >= writer.height:
            return
        for i, bottom in enumerate(writer.bounds[1:]):
            if i in self.bands:
                continue
            if bottom <= final.rows:
                self.bands[i] = self.idle.submit(_band, writer, i, self.lefts.get(i))
            elif writer.has_cut and i not in self.lefts and bottom <= final.left_rows:
                self.lefts[i] = self.idle.submit(writer.left, i)

    def finish(self, pixels: NDArray[np.uint8]) -> bytes:
        """The PNG file of ``pixels`` (every pixel final): the idle thread's finished bands (and left
        pieces), and the others deflated here on ``threads`` threads."""
        writer = self._writer_for(pixels)
        made = {i: f.result() for i, f in self.bands.items() if f.done() and not f.cancelled()}
        lefts = dict(self.lefts)
        self.abandon()
        todo = [i for i in range(writer.bands) if i not in made]
        if len(todo) > 1 and self.threads > 1:
            with ThreadPoolExecutor(min(self.threads, len(todo)), thread_name_prefix="png-band") as pool:
                made.update(zip(todo, pool.map(lambda i: _band(writer, i, lefts.get(i)), todo), strict=True))
        else:
            made.update((i, _band(writer, i, lefts.get(i))) for i in todo)
        return writer.finish([made[i] for i in range(writer.bands)])

    def abandon(self) -> None:
        """Drop the queued work (an upscale that failed, was cancelled or is finishing); what is already
        running ends on its own and is ignored."""
        for futures in (self.lefts, self.bands):
            for future in futures.values():
                future.cancel()
        self.lefts, self.bands = {}, {}
