"""The residual stream's per-channel rescaling before int8 quantization (models/equalize.py)."""

import numpy as np
import pytest
import torch

from models.arch import VCSR, VCSRConfig
from models.equalize import equalize_stream, rescale_stream, stream_magnitudes, stream_scales


def _network(seed: int = 0) -> VCSR:
    torch.manual_seed(seed)
    network = VCSR(VCSRConfig(channels=8, blocks=3, scale=2)).eval()
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.normal_(0.0, 0.2)
    wide = torch.ones(8)
    wide[:2] = 16.0
    rescale_stream(network, 1 / wide)  # two stream channels 16× wider, the function kept (as in vcsr-m-x2)
    return network


def _crops(count: int = 3, side: int = 24) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.random((1, 3, side, side), dtype=np.float32) for _ in range(count)]


def test_rescaling_the_stream_keeps_the_networks_function() -> None:
    network, x = _network(), torch.from_numpy(_crops(1, 40)[0])
    with torch.no_grad():
        before = network(x)
        scales = equalize_stream(network, _crops(), alpha=1.0)
        after = network(x)
    assert float(scales.max() / scales.min()) > 4  # the rescaling is far from the identity
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)


def test_full_equalization_gives_every_stream_channel_the_median_range() -> None:
    network, crops = _network(), _crops()
    magnitudes = stream_magnitudes(network, crops)
    assert float(magnitudes.max() / magnitudes.median()) > 4
    rescale_stream(network, stream_scales(magnitudes, alpha=1.0))
    median = torch.full_like(magnitudes, float(magnitudes.median()))
    torch.testing.assert_close(stream_magnitudes(network, crops), median)


def test_half_equalization_takes_the_square_root_of_the_spread() -> None:
    network, crops = _network(), _crops()
    spread = stream_magnitudes(network, crops)
    spread = spread / spread.median()
    rescale_stream(network, stream_scales(stream_magnitudes(network, crops), alpha=0.5))
    after = stream_magnitudes(network, crops)
    torch.testing.assert_close(after / after.median(), spread.sqrt(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_a_channel_that_never_moved_keeps_its_scale(alpha: float) -> None:
    scales = stream_scales(torch.tensor([0.0, 1.0, 2.0, 4.0]), alpha)
    assert float(scales[0]) == 1.0
    assert scales[1:].tolist() == pytest.approx([(r / 2.0) ** alpha for r in (1.0, 2.0, 4.0)])
