"""The degradation pipeline: each operation does what it says, and the whole is seeded."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from models import degrade
from models.data import DegradedSampler

RNG_IMAGE = np.random.default_rng(0).integers(0, 256, (64, 48, 3), dtype=np.uint8)


def smooth(side: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:side, 0:side]
    return np.stack([(x * 3) % 256, (y * 3) % 256, ((x + y) * 2) % 256], axis=-1).astype(np.uint8)


def test_gaussian_kernels_are_normalised_and_anisotropic_ones_follow_their_angle() -> None:
    iso = degrade.gaussian_kernel(1.5, 1.5, 0.0)
    assert iso.shape == (11, 11) and iso.sum() == pytest.approx(1.0) and np.allclose(iso, iso.T)
    wide = degrade.gaussian_kernel(3.0, 0.5, 0.0)
    assert wide[9, :].sum() > wide[:, 9].sum()  # stretched along x
    turned = degrade.gaussian_kernel(3.0, 0.5, math.pi / 2)
    assert np.allclose(turned, wide.T, atol=1e-12)


def test_blur_keeps_flat_images_and_smooths_noise() -> None:
    flat = np.full((20, 20, 3), 90, np.uint8)
    assert (degrade.convolve(flat, degrade.gaussian_kernel(2, 2, 0)) == flat).all()
    blurred = degrade.convolve(RNG_IMAGE, degrade.gaussian_kernel(1.5, 1.5, 0))
    assert blurred.shape == RNG_IMAGE.shape and blurred.std() < RNG_IMAGE.std() / 2


def test_gaussian_noise_has_the_requested_sigma() -> None:
    flat = np.full((200, 200, 3), 128, np.uint8)
    noisy = degrade.gaussian_noise(flat, 8.0, np.random.default_rng(1))
    assert noisy.astype(float).std() == pytest.approx(8.0, rel=0.05)
    grey = degrade.gaussian_noise(flat, 8.0, np.random.default_rng(1), grey=True)
    assert (grey[..., 0] == grey[..., 1]).all()


def test_poisson_noise_grows_with_brightness() -> None:
    dark, bright = np.full((100, 100, 3), 16, np.uint8), np.full((100, 100, 3), 196, np.uint8)
    rng = np.random.default_rng(2)
    assert degrade.poisson_noise(bright, 1.0, rng).std() > 2 * degrade.poisson_noise(dark, 1.0, rng).std()


def test_jpeg_round_trips_colour_and_greyscale_and_loses_more_at_low_quality() -> None:
    image = smooth()
    errors = [np.abs(degrade.jpeg(image, q).astype(int) - image).mean() for q in (20, 50, 95)]
    assert errors == sorted(errors, reverse=True)
    assert degrade.jpeg(image[..., :1], 50).shape == (64, 64, 1)


def test_degrade_is_seeded_and_returns_the_low_resolution_size() -> None:
    hr = smooth(64)
    a = [degrade.degrade(hr, 2, np.random.default_rng(5)) for _ in range(2)]
    assert a[0].shape == (32, 32, 3) and (a[0] == a[1]).all()
    outputs = {degrade.degrade(hr, 4, np.random.default_rng(s)).tobytes() for s in range(8)}
    assert len(outputs) > 4  # different seeds, different degradations


def test_the_clean_share_is_pillow_bicubic_exactly() -> None:
    hr = smooth(64)
    clean = degrade.degrade(hr, 2, np.random.default_rng(0), degrade.DegradationSettings(clean_p=1.0))
    expected = np.asarray(Image.fromarray(hr).resize((32, 32), Image.Resampling.BICUBIC))
    assert (clean == expected).all()


def test_the_sampler_gives_matching_patches_and_resumes_identically() -> None:
    images = [smooth(64), smooth(80)[:, :72]]
    sampler = DegradedSampler(images, 2, 8, seed=3)
    lr, hr = sampler.batch(4)
    assert lr.shape == (4, 3, 8, 8) and hr.shape == (4, 3, 16, 16) and lr.min() >= 0 and hr.max() <= 1
    state = sampler.state()
    after = sampler.batch(3)
    sampler.restore(state)
    again = sampler.batch(3)
    assert all((a == b).all() for a, b in zip(after, again, strict=True))


NOTHING = degrade.RoundSettings(
    blur_p=0.0, blur_sigma=(1.0, 1.0), resize_p=0.0, resize_range=(1.0, 1.0), noise_p=0.0,
    gaussian_sigma=(7.0, 7.0), poisson_scale=(0.5, 0.5), jpeg_p=0.0, jpeg_quality=(40, 40),
)  # fmt: skip


def recorded(first: degrade.RoundSettings, seed: int) -> tuple[int | None, float]:
    """What ``degrade`` records for one round of ``first`` (no clean share, no second round), after
    checking that recording changed nothing in the image it made."""
    settings = degrade.DegradationSettings(clean_p=0.0, second_p=0.0, first=first)
    applied = degrade.Applied()
    image = degrade.degrade(RNG_IMAGE, 2, np.random.default_rng(seed), settings, applied)
    assert np.array_equal(image, degrade.degrade(RNG_IMAGE, 2, np.random.default_rng(seed), settings))
    return applied.jpeg_quality, round(applied.noise, 6)


def test_the_recorded_degradation_is_what_the_service_would_measure_and_draws_nothing() -> None:
    assert recorded(replace(NOTHING, jpeg_p=1.0), 0) == (40, 0.0)
    # Gaussian noise per channel is recorded; a grey field (30 % of draws) is not, as the service's
    # per-channel estimate does not see it; noise under a later JPEG counts as none either.
    readings = {recorded(replace(NOTHING, noise_p=1.0, poisson_scale=(0.0, 0.0)), seed) for seed in range(12)}
    assert readings == {(None, 7.0), (None, 0.0)}
    assert recorded(replace(NOTHING, noise_p=1.0, jpeg_p=1.0), 1) == (40, 0.0)


SOFT_ONLY = degrade.SoftSettings(p=1.0, blur_p=1.0, blur_sigma=(1.2, 1.2), contrast_p=0.0, jpeg_p=0.0)


def fine_detail(image: np.ndarray) -> float:
    """Mean absolute difference of horizontal neighbours: how much fine detail an image holds."""
    return float(np.abs(np.diff(image.astype(np.float64), axis=1)).mean())


def test_a_soft_pair_band_limits_its_target_and_keeps_the_upload_exact() -> None:
    applied = degrade.Applied()
    hr, lr = degrade.soft_pair(RNG_IMAGE, 2, np.random.default_rng(0), SOFT_ONLY, applied)
    assert hr.shape == RNG_IMAGE.shape and fine_detail(hr) < fine_detail(RNG_IMAGE) / 3
    # The upload is the target's plain bicubic downscale: no blur, noise or resize the condition hides.
    expected = np.asarray(Image.fromarray(hr).resize((24, 32), Image.Resampling.BICUBIC))
    assert np.array_equal(lr, expected) and applied.as_measured() == {"jpeg_quality": None, "noise": 0.0}


def test_a_soft_pair_records_its_jpeg_and_may_lower_the_contrast() -> None:
    settings = replace(SOFT_ONLY, blur_p=0.0, contrast_p=1.0, contrast=(0.5, 0.5), jpeg_p=1.0, jpeg_quality=(60, 60))
    applied = degrade.Applied()
    hr, lr = degrade.soft_pair(RNG_IMAGE, 2, np.random.default_rng(0), settings, applied)
    assert hr.astype(np.float64).std() == pytest.approx(RNG_IMAGE.astype(np.float64).std() / 2, rel=0.02)
    bicubic = np.asarray(Image.fromarray(hr).resize((24, 32), Image.Resampling.BICUBIC))
    assert np.array_equal(lr, degrade.jpeg(bicubic, 60)) and applied.as_measured() == {"jpeg_quality": 60, "noise": 0.0}


def test_the_sampler_makes_its_soft_share_of_pairs_and_the_default_recipe_draws_as_before() -> None:
    images = [RNG_IMAGE]
    soft = DegradedSampler(images, 2, 8, seed=3, settings=degrade.DegradationSettings(soft=SOFT_ONLY))
    lr, hr, applied = soft.sample(4)
    assert [a.jpeg_quality for a in applied] == [None] * 4  # SOFT_ONLY never saves a JPEG
    for low, high in zip(lr, hr, strict=True):
        high_u8 = (high.permute(1, 2, 0) * 255).round().byte().numpy()
        expected = np.asarray(Image.fromarray(high_u8).resize((8, 8), Image.Resampling.BICUBIC))
        assert np.array_equal((low.permute(1, 2, 0) * 255).round().byte().numpy(), expected)
    # No soft share: not one extra draw, so the earlier models' runs stay reproducible.
    plain = [DegradedSampler(images, 2, 8, seed=3, settings=s).batch(4) for s in (None, degrade.DegradationSettings())]
    assert all(torch.equal(a, b) for a, b in zip(*plain, strict=True))


def test_every_sample_of_the_jpeg_mix_is_a_jpeg_the_policy_would_send_to_the_specialist() -> None:
    sampler = DegradedSampler([RNG_IMAGE], 2, 8, seed=5, settings=degrade.JPEG_MIX)
    _, _, applied = sampler.sample(40)
    qualities = [a.jpeg_quality for a in applied]
    assert all(q is not None and 25 <= q <= 85 for q in qualities)
    assert len(set(qualities)) > 10
