"""Tiny VCSR networks with random, seeded weights, saved as the service's model files: fast stand-ins
for the bundled models where a test needs a model of a given kind (here degradation-aware)."""

from __future__ import annotations

from pathlib import Path

import torch

from models.arch import VCSR, VCSRConfig
from models.loader import save_vcsr

CONDITIONED_X2 = VCSRConfig(scale=2, channels=8, blocks=1, conditions=("jpeg_quality", "noise"))


def random_vcsr(config: VCSRConfig, seed: int = 0) -> VCSR:
    """``config``'s network with every weight drawn (VCSR's zero tail would make it plain bicubic)."""
    generator = torch.Generator().manual_seed(seed)
    model = VCSR(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    return model.eval()


def conditioned_model_file(path: Path, seed: int = 0) -> Path:
    """A degradation-aware ×2 VCSR (conditioned on JPEG quality and noise) saved at ``path``."""
    save_vcsr(random_vcsr(CONDITIONED_X2, seed), path)
    return path
