"""The inference contract of every served model, stated once.

``TileEngine.run`` takes a batch of ``N×3×h×w`` uint8 RGB tiles on the CPU and returns
``N×3×(s·h)×(s·w)`` uint8 tiles on the CPU: conversion to the model's device and dtype, scaling to
[0, 1], the forward pass, clamping and rounding back to 8 bits all happen inside ``run`` and nowhere
else. Two engines implement it: ``Engine`` (PyTorch, any device and model) here, and
``models.int8.Int8Engine`` (OpenVINO int8, bundled models on CPUs).
Images are ``H×W``, ``H×W×3`` or ``H×W×4`` uint8 arrays; ``split_planes`` turns one into the RGB
planes the network understands (greyscale is replicated, alpha is upscaled as a separate grey plane)
and ``upscaled_like`` preallocates the upscaled image in the original layout, with one ``PlaneSink``
per plane that pastes each tile's output straight into it (greyscale averaged back to one channel):
the full-size output exists once, as uint8, never as a float or channel-first copy.
"""

from __future__ import annotations

import ctypes
import math
import mmap
import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from models.tiling import Tile, cut, owned, paste, plan_tiles

# The most pixels, in tiles of the configured size, a model that asks not to be tiled runs in one pass.
UNTILED_TILES = 4


def pad_batch(x: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """``x`` (``N×C×h×w``) padded by ``rows`` below and ``cols`` right: mirrored as far as the input
    allows, then the edge repeated (spandrel's ``pad_tensor``, which its own ``__call__`` uses)."""
    if not rows and not cols:
        return x
    reflect_rows, reflect_cols = min(rows, x.shape[-2] - 1), min(cols, x.shape[-1] - 1)
    x = torch.nn.functional.pad(x, (0, reflect_cols, 0, reflect_rows), "reflect")
    return torch.nn.functional.pad(x, (0, cols - reflect_cols, 0, rows - reflect_rows), "replicate")


@dataclass(frozen=True)
class ModelInfo:
    """What the service needs to know about a loaded network: data, not ``if arch == …`` branches."""

    name: str
    architecture: str
    scale: int
    parameters: int
    tile_margin: int
    supports_half: bool
    supports_bfloat16: bool
    # spandrel's hints for third-party networks (its ``SizeRequirements`` and ``ModelTiling``), neutral
    # for ours: an input side below ``min_size`` or not a multiple of ``size_multiple`` (or, with
    # ``square``, a non-square input) is padded by ``run`` and the padding cropped off the output.
    min_size: int = 0
    size_multiple: int = 1
    square: bool = False
    # "supported", "discouraged" (the model relies on global information: tiles leave artefacts) or
    # "internal" (the model tiles itself): only "supported" models are cut into the service's tiles.
    tiling: str = "supported"
    # A degradation-aware network's conditions (``models.arch.CONDITIONS``: what the service measures on
    # the upload), empty for every other model: such a network runs once bound to one image's values
    # (``models.conditioning.bind``).
    conditions: tuple[str, ...] = ()

    def padding(self, height: int, width: int) -> tuple[int, int]:
        """Rows and columns to add below and right of a ``height × width`` input so that it meets the
        size hints (spandrel's ``SizeRequirements.get_padding``, in rows-first order)."""
        h, w = max(self.min_size, height), max(self.min_size, width)
        h, w = -(-h // self.size_multiple) * self.size_multiple, -(-w // self.size_multiple) * self.size_multiple
        if self.square:
            h = w = max(h, w)
        return h - height, w - width

    def tile_side(self, height: int, width: int, tile: int) -> int:
        """The tile side to cut a ``height × width`` image with: ``tile``, or the whole image as one
        tile for a model that asks not to be tiled, as long as the image is at most ``UNTILED_TILES``
        tiles' worth of pixels (its feature maps then stay within a few tiles' memory); past that it
        is tiled anyway rather than risk running out of memory."""
        if self.tiling == "supported" or height * width > UNTILED_TILES * tile * tile:
            return tile
        return max(height, width, tile)


def keep_large_allocations() -> bool:
    """Serve the feature maps' large buffers from a heap glibc keeps, instead of fresh ``mmap``s.

    glibc returns every block over its mmap threshold to the kernel on free, so each forward pass
    page-faults its ~25-100 MB feature maps in again: measured 0.91 → 1.23 MP/s for the default ×2
    model on this CPU (bf16, 512² tiles) with the threshold raised. The cost is that the process keeps
    its peak working set (≈ one tile's feature maps) instead of giving it back. True when applied
    (glibc only; elsewhere a no-op).

    This covers the main heap only. A thread other than the main one allocates from an arena of its
    own, whose heaps are at most 64 MB; larger blocks there are ``mmap``ed and unmapped on every pass
    again. The upscaler replica runs its forward passes on a worker thread, so it starts with
    ``MALLOC_ARENA_MAX=1`` in its environment (the Serve configs set it). Measured on a worker thread
    (``bench.engine --worker-thread``, 1024² tiles): 0.83 → 1.31 MP/s in bf16, 0.44 → 0.65 in fp32.
    Inside a Ray worker, whose ~34 threads already exceed glibc's arena limit, the forward thread may
    happen to share the main arena anyway; the setting makes it certain. See ``threads_share_one_heap``."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from <malloc.h>
    return bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))


def threads_share_one_heap() -> bool:
    """Whether this process started with glibc's ``MALLOC_ARENA_MAX=1`` (every thread on the main heap,
    where ``keep_large_allocations`` applies). It can only be set before the process starts."""
    return os.environ.get("MALLOC_ARENA_MAX") == "1"


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error, not a fallback."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("DEVICE=cuda but torch sees no CUDA device; use DEVICE=auto or cpu")
    return torch.device(device)


class TileEngine(ABC):
    """What every engine offers: ``run`` (the inference contract above), tiling on top of it, and the
    facts the service reports (``info``, ``device``, and ``dtype``, whose name is the precision the
    result names: ``float32``, ``bfloat16``, ``float16`` or ``int8``)."""

    info: ModelInfo
    device: torch.device
    dtype: torch.dtype

    @property
    def scale(self) -> int:
        return self.info.scale

    @property
    def precision(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    @abstractmethod
    def run(self, tiles: torch.Tensor) -> torch.Tensor:
        """Upscale a uint8 batch ``N×3×h×w`` → uint8 ``N×3×(s·h)×(s·w)`` on the CPU."""

    def upscale_tiles(
        self, plane: torch.Tensor, tile: int, max_batch: int = 8, layout: str = "balanced"
    ) -> Iterator[tuple[Tile, torch.Tensor]]:
        """Tile one ``3×H×W`` uint8 plane and run it synchronously, up to ``max_batch`` equal tiles per
        pass: each tile with its upscaled output (evaluation, tests, CLI)."""
        _, height, width = plane.shape
        tile = self.info.tile_side(height, width, tile)
        tiles = plan_tiles(height, width, tile, self.info.tile_margin, layout)
        crops = cut(plane, tiles)
        for i in range(0, len(crops), max_batch):
            chunk = crops[i : i + max_batch]
            if all(c.shape == chunk[0].shape for c in chunk):
                yield from zip(tiles[i : i + max_batch], self.run(torch.stack(chunk)).unbind(0), strict=True)
            else:
                yield from ((t, self.run(c[None])[0]) for t, c in zip(tiles[i : i + max_batch], chunk, strict=True))

    def upscale_image(self, image: NDArray[np.uint8], tile: int = 512, layout: str = "balanced") -> NDArray[np.uint8]:
        out, sinks = upscaled_like(image, self.scale)
        for plane, sink in zip(split_planes(image), sinks, strict=True):
            for placed, output in self.upscale_tiles(plane, tile, layout=layout):
                sink.put(output, placed, self.scale)
        return out


def check_batch(tiles: torch.Tensor) -> None:
    """``ValueError`` unless ``tiles`` is an ``N×3×h×w`` uint8 batch."""
    if tiles.dtype != torch.uint8 or tiles.ndim != 4 or tiles.shape[1] != 3:
        raise ValueError(f"expected an N×3×h×w uint8 batch, got {tuple(tiles.shape)} {tiles.dtype}")


class Engine(TileEngine):
    """The PyTorch engine: any ``nn.Module`` (ours or spandrel's) on any device, in fp32, bf16 or fp16.
    It serves GPUs, community models and every model on CPUs where int8 is not chosen."""

    def __init__(
        self, module: nn.Module, info: ModelInfo, device: torch.device, dtype: torch.dtype = torch.float32
    ) -> None:
        self.info = info
        self.device = device
        self.dtype = dtype
        # channels_last: oneDNN (CPU) and cuDNN (tensor cores) run convolutions fastest in NHWC;
        # measured 1.5× on this project's CPU in bf16.
        self.module = module.to(device=device, dtype=dtype).to(memory_format=torch.channels_last).eval()

    def run(self, tiles: torch.Tensor) -> torch.Tensor:
        """The inference contract, with the model's size hints met: a batch whose sides the model cannot
        take is padded (``ModelInfo.padding``) and its output cropped back to ``s·h × s·w``."""
        check_batch(tiles)
        height, width = tiles.shape[-2:]
        rows, cols = self.info.padding(height, width)
        with torch.inference_mode():
            x = pad_batch(tiles.to(self.device, non_blocking=True).to(self.dtype).div_(255.0), rows, cols)
            y = self.module(x.contiguous(memory_format=torch.channels_last))
            y = y[..., : self.scale * height, : self.scale * width]
            out: torch.Tensor = y.float().clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8).cpu()
            return out


def split_planes(image: NDArray[np.uint8]) -> list[torch.Tensor]:
    """RGB planes (``3×H×W`` uint8) to upscale: the colour, then the alpha channel if there is one."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"expected an H×W[×C] uint8 image, got {image.shape} {image.dtype}")
    with warnings.catch_warnings():
        # Arrays from Pillow and Ray's object store are read-only; these views are never written.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        pixels = torch.from_numpy(np.ascontiguousarray(image))
    if pixels.ndim == 2:
        return [pixels.expand(3, *pixels.shape)]
    channels = pixels.shape[2]
    if channels == 3:
        return [pixels.permute(2, 0, 1)]
    if channels == 4:
        alpha = pixels[..., 3]
        return [pixels[..., :3].permute(2, 0, 1), alpha.expand(3, *alpha.shape)]
    raise ValueError(f"expected 1, 3 or 4 channels, got {channels}")


@dataclass(frozen=True)
class PlaneSink:
    """Where one plane of ``split_planes`` lands in the upscaled image: a ``C×(s·H)×(s·W)`` view of it,
    and whether the network's three channels are averaged back to one (greyscale, alpha)."""

    canvas: torch.Tensor
    grey: bool

    def put(self, output: torch.Tensor, tile: Tile, scale: int) -> None:
        """Paste the part of one upscaled tile (``3×(s·h)×(s·w)`` uint8) that the tile owns."""
        if not self.grey:
            paste(self.canvas, output, tile, scale)
            return
        # The network saw R = G = B; its channels agree to rounding, so average them back to grey.
        (rows, cols), (tile_rows, tile_cols) = owned(tile, scale)
        self.canvas[:, rows, cols] = output[:, tile_rows, tile_cols].float().mean(dim=0).round_().to(torch.uint8)


def own_pages(shape: tuple[int, ...]) -> NDArray[np.uint8]:
    """An uninitialised uint8 array on pages of its own (an anonymous ``mmap``), given back to the system
    when the array is freed. From ``malloc`` a large output would be carved out of the heap that
    ``keep_large_allocations`` keeps for the feature maps, and the next forward pass would grow the heap
    past it: the process's peak would be the feature maps plus every output ever alive at once.

    Its pages are mapped in at once (``MAP_POPULATE``, Linux): faulted in one by one as the tiles are
    pasted, a 7680×4320 output cost 71 ms of CPU to fill here, against 48 populated, and the faults of
    the last tile's part came after the model."""
    nbytes = math.prod(shape)
    if nbytes < 1 << 20:
        return np.empty(shape, np.uint8)
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)
    return np.frombuffer(mmap.mmap(-1, nbytes, flags=flags), np.uint8).reshape(shape)


def upscaled_like(image: NDArray[np.uint8], scale: int) -> tuple[NDArray[np.uint8], list[PlaneSink]]:
    """The upscaled image, allocated once in the layout of ``image`` (uint8, ``s·H×s·W[×C]``), and a
    sink for each plane ``split_planes(image)`` returns, in the same order."""
    out = own_pages((scale * image.shape[0], scale * image.shape[1], *image.shape[2:]))
    pixels = torch.from_numpy(out)
    if out.ndim == 2:
        return out, [PlaneSink(pixels[None], grey=True)]
    channels_first = pixels.permute(2, 0, 1)
    sinks = [PlaneSink(channels_first[:3], grey=False)]
    if out.shape[2] == 4:
        sinks.append(PlaneSink(channels_first[3:], grey=True))
    return out, sinks
