"""VCSR, the residual super-resolution network trained by this project.

The network works in low-resolution space and learns only the residual over a bicubic upsample of its
input: features → residual blocks → a convolution to ``channels·scale²`` maps → pixel shuffle, added to
the bicubic base. Learning the residual converges in minutes on a CPU, where a network that must
produce every output pixel itself (FSRCNN) needs hours (shared/NOTES.md).

Tensor contract: input ``N×C×H×W`` float in [0, 1]; output ``N×C×(scale·H)×(scale·W)``, unclamped.

A degradation-aware network (``conditions`` set, SRMD/FFDNet style) also takes what the service measures
on the upload, one number per image per condition (``condition_vector``), fed to the head as constant
input planes: a small network then need not guess the JPEG quality or the noise level blindly.
``Conditioned`` binds one image's values so that a conditioned network runs wherever a plain one does.

The bicubic base has two exact forms: ``F.interpolate`` (training and the torch engines) and, with
``phase_base`` set (``use_phase_base``), a fixed convolution in low-resolution space whose ``scale²``
outputs per channel are the output's sub-pixel phases, added before the pixel shuffle. The second is
for graph runtimes: OpenVINO's Interpolate spent 37-43 % of an int8 ×4 pass on this CPU, where the
phase convolution took ~2 % (its per-layer counters).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

# The conditions a network can take, each with the measured value that maps to 1.0 on its plane and
# the value meaning "none": JPEG quality (1-100; a PNG counts as 100, no JPEG loss) and the noise σ per
# colour channel in 8-bit levels (clipped at 25).
CONDITIONS: dict[str, tuple[float, float]] = {"jpeg_quality": (100.0, 100.0), "noise": (25.0, 0.0)}


@dataclass(frozen=True)
class VCSRConfig:
    """Hyperparameters of one VCSR network; registered models only pin these numbers."""

    scale: int
    channels: int = 32
    blocks: int = 4
    in_channels: int = 3
    conditions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.scale not in (2, 3, 4):
            raise ValueError(f"VCSR scale must be 2, 3 or 4, got {self.scale}")
        if self.channels < 1 or self.blocks < 0:
            raise ValueError(f"VCSR needs channels ≥ 1 and blocks ≥ 0, got {self}")
        object.__setattr__(self, "conditions", tuple(self.conditions))  # JSON metadata gives a list
        if unknown := [c for c in self.conditions if c not in CONDITIONS]:
            raise ValueError(f"VCSR conditions must be among {sorted(CONDITIONS)}, got {unknown}")

    @property
    def receptive_radius(self) -> int:
        """Input pixels on each side that can influence one output pixel (head, blocks, tail)."""
        return 2 * self.blocks + 2

    def to_dict(self) -> dict[str, object]:
        """Fields for the weights' metadata; ``conditions`` only when set, so plain files stay as they were."""
        fields = asdict(self)
        if not self.conditions:
            del fields["conditions"]
        return fields


def condition_vector(config: VCSRConfig, measured: Mapping[str, float | None]) -> torch.Tensor:
    """``1×K`` plane values of ``config.conditions`` from measured values (``condition_values``)."""
    return condition_values(config.conditions, measured)


def condition_values(conditions: Sequence[str], measured: Mapping[str, float | None]) -> torch.Tensor:
    """``1×K`` plane values of ``conditions`` from measured values (``None`` or absent: the condition's
    "none", e.g. no JPEG), each divided by its scale and clipped to [0, 1]."""
    values = []
    for name in conditions:
        scale, none = CONDITIONS[name]
        value = measured.get(name)
        values.append(min(max((none if value is None else float(value)) / scale, 0.0), 1.0))
    return torch.tensor([values], dtype=torch.float32)


# PyTorch's bicubic kernel (Keys, a = -0.75): ``F.interpolate``'s, which the network was trained on.
CUBIC_A = -0.75
PHASE_RADIUS = 2  # input pixels on each side that one output phase reads (taps -2..+2 cover every phase)


def _cubic(t: float) -> float:
    t, a = abs(t), CUBIC_A
    if t <= 1:
        return ((a + 2) * t - (a + 3)) * t * t + 1
    if t < 2:
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return 0.0


def bicubic_phase_taps(scale: int) -> torch.Tensor:
    """``scale×5`` weights: row ``p`` gives output phase ``p`` (output ``scale·i + p``) from inputs
    ``i-2 … i+2``, as ``F.interpolate(mode="bicubic", align_corners=False)`` computes it (half-pixel
    centres, edges by clamped reads, i.e. replicate padding)."""
    taps = torch.zeros(scale, 2 * PHASE_RADIUS + 1, dtype=torch.float64)
    for phase in range(scale):
        source = (phase + 0.5) / scale - 0.5  # relative to input pixel i
        for offset in range(-PHASE_RADIUS, PHASE_RADIUS + 1):
            taps[phase, offset + PHASE_RADIUS] = _cubic(source - offset)
    return taps


class PhaseBicubic(nn.Module):
    """Bicubic upsampling by ``scale`` as ``channels·scale²`` low-resolution phase maps, laid out for
    ``nn.PixelShuffle`` (channel ``c·scale² + dy·scale + dx``) and added to ``residual`` (maps in that
    layout): ``shuffle(PhaseBicubic(x, 0))`` equals ``F.interpolate(x, scale, "bicubic")`` up to float
    rounding. The add lives here so that a quantizer's ignored scope keeps it in float with the base."""

    def __init__(self, scale: int, channels: int) -> None:
        super().__init__()
        taps = bicubic_phase_taps(scale)
        width = taps.shape[1]
        kernels = torch.einsum("yi,xj->yxij", taps, taps).reshape(scale * scale, 1, width, width)
        self.register_buffer("weight", kernels.repeat(channels, 1, 1, 1).float(), persistent=False)
        self.channels = channels

    def forward(self, x: torch.Tensor, residual: torch.Tensor | float = 0.0) -> torch.Tensor:
        padded = F.pad(x, (PHASE_RADIUS,) * 4, mode="replicate")
        phases = F.conv2d(padded, self.get_buffer("weight").to(x.dtype), groups=self.channels)
        out: torch.Tensor = phases + residual
        return out


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In place on fresh convolution outputs: no extra feature-map allocations (~20% faster on CPU).
        out: torch.Tensor = self.conv2(self.conv1(x).relu_()).add_(x)
        return out


class VCSR(nn.Module):
    def __init__(self, config: VCSRConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        self.head = nn.Conv2d(config.in_channels + len(config.conditions), c, 3, padding=1)
        self.body = nn.Sequential(*(ResidualBlock(c) for _ in range(config.blocks)))
        self.tail = nn.Conv2d(c, config.in_channels * config.scale**2, 3, padding=1)
        self.shuffle = nn.PixelShuffle(config.scale)
        self.phases = PhaseBicubic(config.scale, config.in_channels)
        self.phase_base = False  # the base by ``self.phases`` (module docstring; ``use_phase_base``)
        # A zero tail makes the untrained network exactly bicubic: training starts from the baseline.
        nn.init.zeros_(self.tail.weight)
        assert self.tail.bias is not None
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """``condition``: ``N×K`` plane values (``condition_vector``), required iff the config has conditions."""
        residual = self.tail(self.body(self.head(self._with_planes(x, condition)).relu_()))
        if self.phase_base:
            shuffled: torch.Tensor = self.shuffle(self.phases(x, residual))
            return shuffled
        base = F.interpolate(x, scale_factor=self.config.scale, mode="bicubic", align_corners=False)
        out: torch.Tensor = self.shuffle(residual).add_(base)
        return out

    def _with_planes(self, x: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        if self.config.conditions:
            if condition is None:
                raise ValueError(f"this VCSR is conditioned on {self.config.conditions}: pass condition_vector(...)")
            planes = condition.to(x.dtype)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
            return torch.cat([x, planes], dim=1)
        return x


class Conditioned(nn.Module):
    """A conditioned VCSR bound to one image's condition values: ``forward(x)`` like a plain network's,
    so the engine, tiling and evaluation run it unchanged (one binding per image or per setting)."""

    def __init__(self, model: VCSR, condition: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("condition", condition.reshape(1, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        condition = self.get_buffer("condition")
        out: torch.Tensor = self.model(x, condition.expand(x.shape[0], -1))
        return out


def use_phase_base(module: nn.Module) -> nn.Module:
    """``module`` with every VCSR in it computing its base by phase convolution (for graph export)."""
    for part in module.modules():
        if isinstance(part, VCSR):
            part.phase_base = True
    return module


def widen_head(state: dict[str, torch.Tensor], config: VCSRConfig) -> dict[str, torch.Tensor]:
    """A plain network's weights made to fit ``config``'s head with its condition planes: the planes' head
    weights are zero, so the conditioned network starts as exactly the network it was made from."""
    weight = state["head.weight"]
    extra = config.in_channels + len(config.conditions) - weight.shape[1]
    if extra <= 0:
        return state
    zeros = weight.new_zeros(weight.shape[0], extra, *weight.shape[2:])
    return {**state, "head.weight": torch.cat([weight, zeros], dim=1)}


def deepen(state: dict[str, torch.Tensor], model: VCSR) -> dict[str, torch.Tensor]:
    """A network's weights made to fit ``model``, which has as many or more residual blocks: the blocks the
    source lacks come after its own, each with ``model``'s own first convolution and a zero second one (an
    identity block), so ``model`` starts as exactly the source network and every new block still learns."""
    own = model.state_dict()
    source_blocks = {key.split(".")[1] for key in state if key.startswith("body.")}
    grown = dict(state)
    for index in range(len(source_blocks), model.config.blocks):
        for part in ("conv1", "conv2"):
            for kind in ("weight", "bias"):
                key = f"body.{index}.{part}.{kind}"
                grown[key] = own[key].clone() if part == "conv1" else torch.zeros_like(own[key])
    return grown


def flops_per_output_pixel(config: VCSRConfig) -> float:
    """Multiply-adds ×2 of the convolutions per output pixel (the bicubic base is negligible)."""
    c, k = config.channels, 9
    head_in = config.in_channels + len(config.conditions)
    per_input_pixel = k * (head_in * c + 2 * config.blocks * c * c + c * config.in_channels * config.scale**2)
    return 2.0 * per_input_pixel / config.scale**2
