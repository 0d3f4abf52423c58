import math

import numpy as np
import pytest

from models.metrics import luma, psnr_y, ssim_y


def test_luma_follows_bt601_studio_range() -> None:
    assert luma(np.zeros((1, 1, 3), np.uint8))[0, 0] == pytest.approx(16.0)
    assert luma(np.full((1, 1, 3), 255, np.uint8))[0, 0] == pytest.approx(235.0)
    assert luma(np.array([[[255, 0, 0]]], np.uint8))[0, 0] == pytest.approx(16 + 65.481)


def test_greyscale_images_are_their_own_luma() -> None:
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert np.array_equal(luma(grey), grey.astype(np.float64))


def test_psnr_of_a_known_error() -> None:
    reference = np.full((10, 10), 100, np.uint8)
    output = reference.copy()
    output[:, :] = 110  # greyscale: luma is the grey value, off by 10 everywhere
    mse = 10.0**2
    assert psnr_y(output, reference, shave=0) == pytest.approx(10 * math.log10(255**2 / mse))


def test_psnr_ignores_the_shaved_border_and_is_infinite_for_identical_images() -> None:
    reference = np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    output = reference.copy()
    output[:2, :] = 0
    assert psnr_y(output, reference, shave=2) == math.inf
    assert psnr_y(output, reference, shave=1) < 40


def test_ssim_is_one_for_identical_images_and_lower_for_noise() -> None:
    rng = np.random.default_rng(1)
    reference = np.broadcast_to(np.linspace(60, 180, 40, dtype=np.uint8)[None, :, None], (40, 40, 3))
    noisy = np.clip(reference.astype(int) + rng.normal(0, 20, reference.shape), 0, 255).astype(np.uint8)
    assert ssim_y(reference, reference, shave=0) == pytest.approx(1.0)
    assert 0 < ssim_y(noisy, reference, shave=0) < 0.5


def test_ssim_of_constant_images_with_an_offset() -> None:
    # Constant images: variance terms vanish, SSIM = (2·μx·μy + C1) / (μx² + μy² + C1).
    a, b = np.full((16, 16), 100, np.uint8), np.full((16, 16), 120, np.uint8)
    mx, my = 100.0, 120.0
    c1 = (0.01 * 255) ** 2
    assert ssim_y(a, b, shave=0) == pytest.approx((2 * mx * my + c1) / (mx**2 + my**2 + c1))


def test_size_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="size mismatch"):
        psnr_y(np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.uint8), 0)
