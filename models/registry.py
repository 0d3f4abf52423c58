"""Named models: built-in VCSR variants pin their hyperparameters here, weights live in ``weights/``.

A registered model is a frozen ``ModelSpec``; the service resolves a name to a spec and hands the
spec's file to ``models.loader``. Users add their own files through ``configs/models.yaml``; the
composition root reads that file and passes the extra specs in, so this module reads no config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models.arch import VCSRConfig

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    path: Path
    description: str = ""
    config: VCSRConfig | None = None  # set for our own architectures; None for spandrel files


def _vcsr(name: str, config: VCSRConfig, description: str) -> ModelSpec:
    return ModelSpec(name, WEIGHTS_DIR / f"{name}.safetensors", description, config)


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
        ),
        _vcsr(
            "vcsr-real-x4",
            VCSRConfig(scale=4, channels=48, blocks=8),
            "VCSR medium ×4 fine-tuned on realistic degradations (JPEG, noise, blur): real-world uploads",
        ),
    )
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
