"""The inference contract of every served model, stated once.

``Engine.run`` takes a batch of ``N×3×h×w`` uint8 RGB tiles on the CPU and returns ``N×3×(s·h)×(s·w)``
uint8 tiles on the CPU: conversion to the model's device and dtype, scaling to [0, 1], the forward
pass under ``inference_mode``, clamping and rounding back to 8 bits all happen here and nowhere else.
Images are ``H×W``, ``H×W×3`` or ``H×W×4`` uint8 arrays; ``split_planes`` turns one into the RGB
planes the network understands (greyscale is replicated, alpha is upscaled as a separate grey plane)
and ``merge_planes`` restores the original layout.
"""

from __future__ import annotations

import ctypes
import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from models.tiling import cut, plan_tiles, stitch


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


class Engine:
    def __init__(
        self, module: nn.Module, info: ModelInfo, device: torch.device, dtype: torch.dtype = torch.float32
    ) -> None:
        self.info = info
        self.device = device
        self.dtype = dtype
        # channels_last: oneDNN (CPU) and cuDNN (tensor cores) run convolutions fastest in NHWC;
        # measured 1.5× on this project's CPU in bf16.
        self.module = module.to(device=device, dtype=dtype).to(memory_format=torch.channels_last).eval()

    @property
    def scale(self) -> int:
        return self.info.scale

    def run(self, tiles: torch.Tensor) -> torch.Tensor:
        """Upscale a uint8 batch ``N×3×h×w`` → uint8 ``N×3×(s·h)×(s·w)`` on the CPU."""
        if tiles.dtype != torch.uint8 or tiles.ndim != 4 or tiles.shape[1] != 3:
            raise ValueError(f"expected an N×3×h×w uint8 batch, got {tuple(tiles.shape)} {tiles.dtype}")
        with torch.inference_mode():
            x = tiles.to(self.device, non_blocking=True).to(self.dtype).div_(255.0)
            y = self.module(x.contiguous(memory_format=torch.channels_last))
            out: torch.Tensor = y.float().clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8).cpu()
            return out

    def upscale_plane(
        self, plane: torch.Tensor, tile: int, max_batch: int = 8, layout: str = "balanced"
    ) -> torch.Tensor:
        """Tile, run and stitch one ``3×H×W`` uint8 plane synchronously (evaluation, tests, CLI)."""
        _, height, width = plane.shape
        tiles = plan_tiles(height, width, tile, self.info.tile_margin, layout)
        crops = cut(plane, tiles)
        outputs: list[torch.Tensor] = []
        for i in range(0, len(crops), max_batch):
            chunk = crops[i : i + max_batch]
            if all(c.shape == chunk[0].shape for c in chunk):
                outputs.extend(self.run(torch.stack(chunk)).unbind(0))
            else:
                outputs.extend(self.run(c[None])[0] for c in chunk)
        return stitch(outputs, tiles, self.scale, height, width)

    def upscale_image(self, image: NDArray[np.uint8], tile: int = 512, layout: str = "balanced") -> NDArray[np.uint8]:
        planes = split_planes(image)
        return merge_planes([self.upscale_plane(p, tile, layout=layout) for p in planes], image)


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


def merge_planes(planes: list[torch.Tensor], like: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Inverse of ``split_planes`` on the upscaled planes, for an original laid out like ``like``."""
    colour = planes[0]
    if like.ndim == 2:
        # The network saw R = G = B; its channels agree to rounding, so average them back to grey.
        grey = colour.float().mean(dim=0).round_().to(torch.uint8)
        return grey.numpy()
    rgb = colour.permute(1, 2, 0)
    if like.shape[2] == 4:
        alpha = planes[1].float().mean(dim=0).round_().to(torch.uint8)
        rgb = torch.cat([rgb, alpha[..., None]], dim=2)
    return np.ascontiguousarray(rgb.numpy())
