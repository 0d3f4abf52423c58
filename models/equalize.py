"""Per-channel equalization of a VCSR's residual stream, before its int8 quantization.

Every residual block adds its increment to one stream of ``channels`` maps, and an int8 stream is
quantized per tensor: one range for all its channels. In ``vcsr-m-x2`` a channel's largest magnitude
over the calibration crops is 1.8-4.6× the median channel's, so a few wide channels set the step size
of all the others.

Dividing stream channel ``c`` by ``s_c`` everywhere leaves the network's function unchanged (up to float
rounding) when the weights that write the stream are divided by ``s_c`` (output channel ``c`` of the
head and of every block's second convolution, with their biases) and the weights that read it are
multiplied by it (input channel ``c`` of every block's first convolution and of the last one); the
head's ReLU commutes with a positive scale. ``s_c = (r_c / median r)^α``, ``r_c`` the channel's largest
magnitude over every stream tensor and increment on the calibration crops: α = 1 would give every
channel the same range but moves all the spread into the reading convolutions' weights (quantized per
output channel, so a widened input channel coarsens their steps); α = 0.5 splits it, as SmoothQuant's
migration strength does (Xiao et al., 2023). ``bench.int8_stream --equalize`` measures the levels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import torch
from numpy.typing import NDArray
from torch.utils.hooks import RemovableHandle

from models.arch import VCSR, ResidualBlock


def _blocks(module: VCSR) -> list[ResidualBlock]:
    return [cast(ResidualBlock, block) for block in module.body]


def stream_magnitudes(module: VCSR, calibration: Sequence[NDArray[np.float32]]) -> torch.Tensor:
    """Per stream channel, the largest magnitude over ``calibration`` (run in float) of the stream at every
    block's input and at the last convolution's input, and of every block's increment."""
    largest = torch.zeros(module.config.channels)

    def keep(values: torch.Tensor) -> None:
        largest.copy_(torch.maximum(largest, values.detach().abs().amax(dim=(0, 2, 3))))

    def reads(_: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        keep(inputs[0])

    def writes(_: torch.nn.Module, __: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        keep(output)

    readers: list[torch.nn.Module] = [*_blocks(module), module.tail]
    hooks = [reader.register_forward_pre_hook(reads) for reader in readers]
    hooks += [block.conv2.register_forward_hook(writes) for block in _blocks(module)]
    run_hooked(module, calibration, hooks)
    return largest


def run_hooked(
    module: torch.nn.Module, calibration: Sequence[NDArray[np.float32]], hooks: list[RemovableHandle]
) -> None:
    """Run every crop of ``calibration`` through ``module`` in float for its ``hooks``, then remove them."""
    try:
        with torch.no_grad():
            for crop in calibration:
                module(torch.from_numpy(crop))
    finally:
        for hook in hooks:
            hook.remove()


def stream_scales(magnitudes: torch.Tensor, alpha: float) -> torch.Tensor:
    """``(r_c / median r)^alpha``; a channel that never moved keeps its scale of 1."""
    median = magnitudes[magnitudes > 0].median()
    return torch.where(magnitudes > 0, (magnitudes / median) ** alpha, torch.ones_like(magnitudes))


def rescale_stream(module: VCSR, scales: torch.Tensor) -> None:
    """Divide the stream's channel ``c`` by ``scales[c]``, in place, keeping the network's function."""
    with torch.no_grad():
        for writer in (module.head, *(block.conv2 for block in _blocks(module))):
            writer.weight.div_(scales[:, None, None, None])
            assert writer.bias is not None
            writer.bias.div_(scales)
        for reader in (*(block.conv1 for block in _blocks(module)), module.tail):
            reader.weight.mul_(scales[None, :, None, None])


def equalize_stream(module: VCSR, calibration: Sequence[NDArray[np.float32]], alpha: float) -> torch.Tensor:
    """Rescale ``module``'s stream (in place) by ``stream_scales`` of its magnitudes on ``calibration``;
    returns the scales."""
    scales = stream_scales(stream_magnitudes(module, calibration), alpha)
    rescale_stream(module, scales)
    return scales
