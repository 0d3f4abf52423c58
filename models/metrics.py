"""Image-quality metrics as the super-resolution literature computes them.

PSNR and SSIM are measured on the luma channel of ITU-R BT.601 YCbCr (MATLAB's ``rgb2ycbcr``:
Y = 16 + (65.481 R + 128.553 G + 24.966 B) with RGB in [0, 1], Y in [16, 235]) after shaving
``shave`` pixels from every border, as in the SRCNN/VDSR/EDSR papers; greyscale images (one in
Set14) are measured on their grey values directly, like the reference code. Inputs are ``H×W×3`` or
``H×W`` uint8 arrays, so the model output is measured after it has been quantised like a saved image.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numpy.typing import NDArray

_BT601 = np.array([65.481, 128.553, 24.966]) / 255.0


def luma(image: NDArray[np.uint8]) -> NDArray[np.float64]:
    """BT.601 luma in [16, 235] of an RGB uint8 image; a greyscale image is its own luma in [0, 255],
    as in the reference MATLAB code (which only calls ``rgb2ycbcr`` on three-channel images)."""
    pixels = image.astype(np.float64)
    if pixels.ndim == 2:
        return pixels
    return 16.0 + pixels[..., :3] @ _BT601


def _shaved(a: NDArray[np.float64], shave: int) -> NDArray[np.float64]:
    return a[shave:-shave, shave:-shave] if shave > 0 else a


def _check_pair(output: NDArray[np.uint8], reference: NDArray[np.uint8]) -> None:
    if output.shape[:2] != reference.shape[:2]:
        raise ValueError(f"size mismatch: output {output.shape} vs reference {reference.shape}")


def psnr_y(output: NDArray[np.uint8], reference: NDArray[np.uint8], shave: int) -> float:
    """PSNR (dB) between the luma channels, peak 255; ``inf`` for identical images."""
    _check_pair(output, reference)
    diff = _shaved(luma(output), shave) - _shaved(luma(reference), shave)
    mse = float(np.mean(diff**2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] @ g[None, :])[None, None]


def _valid_filter(a: NDArray[np.float64], taps: NDArray[np.float64]) -> NDArray[np.float64]:
    """``a`` filtered by the separable window ``taps ⊗ taps`` with no padding ('valid', as ``conv2d``)."""
    k = len(taps)
    rows = sum(taps[i] * a[i : a.shape[0] - k + 1 + i] for i in range(k))
    return np.asarray(sum(taps[i] * rows[:, i : a.shape[1] - k + 1 + i] for i in range(k)))


def ssim_y(output: NDArray[np.uint8], reference: NDArray[np.uint8], shave: int) -> float:
    """Mean SSIM (Wang et al. 2004: 11×11 Gaussian, σ = 1.5, K1 = 0.01, K2 = 0.03, L = 255) on luma."""
    _check_pair(output, reference)
    x = _shaved(luma(output), shave)
    y = _shaved(luma(reference), shave)
    # The Gaussian window is separable: two 1-D passes equal the 11×11 filter at a fraction of the cost.
    taps = _gaussian_window()[0, 0].sum(dim=1).numpy()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(t: NDArray[np.float64]) -> NDArray[np.float64]:
        return _valid_filter(t, taps)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.mean())
