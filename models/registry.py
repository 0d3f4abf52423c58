"""Named models: built-in VCSR variants pin their hyperparameters here, weights live in ``weights/``.

A registered model is a frozen ``ModelSpec``; the service resolves a name to a spec and hands the
spec's file to ``models.loader``. Users add their own files through ``configs/models.yaml``; the
composition root reads that file and passes the extra specs in, so this module reads no config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from models.arch import VCSRConfig

# What a model is for, as the quality policy names it (configs/quality_policy.py's ``Family`` is the same
# three, tested): "fidelity" (bicubic degradation, clean inputs), "real" (trained on JPEG, noise and blur)
# or "jpeg" (a specialist for JPEG uploads: artefacts and soft content, not blur).
Family = Literal["fidelity", "real", "jpeg"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
# Candidates' weights and resumable training checkpoints, kept out of the package and the image.
CHECKPOINTS_DIR = Path(__file__).resolve().parent / "checkpoints"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    path: Path
    description: str = ""
    config: VCSRConfig | None = None  # set for our own architectures; None for spandrel files
    family: Family | None = None  # None for files that do not say


def _vcsr(name: str, config: VCSRConfig, description: str, family: Family = "fidelity") -> ModelSpec:
    return ModelSpec(name, WEIGHTS_DIR / f"{name}.safetensors", description, config, family)


BUILTIN: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _vcsr("vcsr-m-x2", VCSRConfig(scale=2, channels=48, blocks=8), "VCSR medium, 48×8 blocks, ×2 (default)"),
        _vcsr("vcsr-m-x4", VCSRConfig(scale=4, channels=48, blocks=8), "VCSR medium, 48×8 blocks, ×4 (default)"),
        _vcsr("vcsr-s-x2", VCSRConfig(scale=2, channels=32, blocks=4), "VCSR small, 32×4 blocks, ×2 (4× cheaper)"),
        _vcsr("vcsr-s-x4", VCSRConfig(scale=4, channels=32, blocks=4), "VCSR small, 32×4 blocks, ×4 (4× cheaper)"),
        _vcsr(
            "vcsr-real-x2",
            VCSRConfig(scale=2, channels=48, blocks=8),
            "VCSR medium ×2 fine-tuned on realistic degradations (JPEG, noise, blur): real-world uploads",
            "real",
        ),
        _vcsr(
            "vcsr-real-x4",
            VCSRConfig(scale=4, channels=48, blocks=8),
            "VCSR medium ×4 fine-tuned on realistic degradations (JPEG, noise, blur): real-world uploads",
            "real",
        ),
        _vcsr(
            "vcsr-jpeg-x2",
            VCSRConfig(scale=2, channels=48, blocks=8, conditions=("jpeg_quality", "noise")),
            "VCSR medium ×2 for JPEG uploads: told the measured JPEG quality and noise, keeps soft content soft",
            "jpeg",
        ),
        _vcsr(
            "vcsr-jpeg-x4",
            VCSRConfig(scale=4, channels=48, blocks=8, conditions=("jpeg_quality", "noise")),
            "VCSR medium ×4 for JPEG uploads: told the measured JPEG quality and noise, keeps soft content soft",
            "jpeg",
        ),
    )
}


# Models trained and evaluated here (``models.train``, ``models.evaluate --degraded``) that the service
# does not serve: a degradation-aware one ships only once it beats the served model of its family on the
# degraded sets where the policy would route to it (``vcsr-jpeg-x2`` did: JPEG uploads, not blur). The
# service can run one (the upscaler binds each upload's measured JPEG quality and noise,
# ``models.conditioning``): registered in configs/models.yaml it is served by name.
CANDIDATES: dict[str, ModelSpec] = {
    "vcsr-real-c-x2": ModelSpec(
        "vcsr-real-c-x2",
        CHECKPOINTS_DIR / "vcsr-real-c-x2" / "vcsr-real-c-x2.safetensors",
        "VCSR medium ×2, real-world, conditioned on the upload's JPEG quality and noise σ (SRMD style)",
        VCSRConfig(scale=2, channels=48, blocks=8, conditions=("jpeg_quality", "noise")),
        "real",
    ),
    # The same at ×4, from vcsr-real-x4 (a zero-initialised widened head), trained with the soft share
    # the ×2 specialist shipped with; a run of several sessions (models/checkpoints/vcsr-real-c-x4/).
    "vcsr-real-c-x4": ModelSpec(
        "vcsr-real-c-x4",
        CHECKPOINTS_DIR / "vcsr-real-c-x4" / "vcsr-real-c-x4.safetensors",
        "VCSR medium ×4, real-world, conditioned on the upload's JPEG quality and noise σ (SRMD style)",
        VCSRConfig(scale=4, channels=48, blocks=8, conditions=("jpeg_quality", "noise")),
        "real",
    ),
    # The ×2 JPEG specialist grown to 12 blocks (1.5× its arithmetic; up to 2× the fidelity model's time is
    # accepted on degraded uploads), the four new blocks starting as identities (``models.arch.deepen``):
    # 5 475 steps (65 min) with --mix soft gained only +0.01 to +0.03 dB on Set14/BSD100 JPEG settings, so
    # it is not served (docs/training/soft-mix.md §6).
    "vcsr-jpeg-l-x2": ModelSpec(
        "vcsr-jpeg-l-x2",
        CHECKPOINTS_DIR / "vcsr-jpeg-l-x2" / "vcsr-jpeg-l-x2.safetensors",
        "VCSR 48×12 blocks ×2 for JPEG uploads, conditioned on the upload's JPEG quality and noise σ",
        VCSRConfig(scale=2, channels=48, blocks=12, conditions=("jpeg_quality", "noise")),
        "jpeg",
    ),
}


def default_model_name(scale: int) -> str:
    """The bundled model the service uses for ``UPSCALE_SCALE`` when no other is chosen."""
    return f"vcsr-m-x{scale}"


class UnregisteredModelError(KeyError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = known

    def __str__(self) -> str:
        return f"unknown model {self.name!r}; registered models: {', '.join(self.known)}"


def resolve(name: str, extra: dict[str, ModelSpec] | None = None) -> ModelSpec:
    specs = {**BUILTIN, **(extra or {})}
    if name not in specs:
        raise UnregisteredModelError(name, sorted(specs))
    return specs[name]
