"""The models one upscaler replica can serve, validated at start-up.

Built-in models, the registry file's entries and ``MODEL_PATH`` (served under its file's stem) are
each loaded once when the replica starts, so a file that cannot be loaded fails the replica with a
message naming it, and ``GET /api/models`` can list scales and sizes without loading anything later.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from configs.model_registry import ModelEntry
from configs.settings import Settings
from deployments.contracts.values import ModelSummary
from models.engine import ModelInfo
from models.loader import LoadedModel, load_model
from models.precision import recorded_losses
from models.registry import BUILTIN, Family, ModelSpec, UnregisteredModelError, default_model_name

log = logging.getLogger("ray.serve")
# The families routed beside the fidelity model at each scale, each by its first served model there.
SPECIALISTS: tuple[Family, ...] = ("real", "jpeg")


def _evaluation(path: Path) -> dict[str, Any]:
    """``<stem>.eval.json`` beside the weights (written by ``models.evaluate``), if there is one."""
    report = path.with_name(path.stem + ".eval.json")
    return dict(json.loads(report.read_text())) if report.is_file() else {}


def _scores(path: Path) -> dict[str, float]:
    """Mean PSNR-Y per evaluation set."""
    sets = _evaluation(path).get("sets", {})
    return {name: round(float(s["mean"]["psnr"]), 2) for name, s in sets.items()}


class Catalog:
    def __init__(self, settings: Settings, entries: list[ModelEntry]) -> None:
        specs: dict[str, ModelSpec] = {**BUILTIN}
        specs.update({e.name: ModelSpec(e.name, e.path, e.description) for e in entries})
        if settings.model_path is not None:
            name = settings.model_path.stem
            specs[name] = ModelSpec(name, settings.model_path, "MODEL_PATH")
            self.default = name
        else:
            self.default = settings.model_name or default_model_name(settings.scales[0])
        if self.default not in specs:
            raise UnregisteredModelError(self.default, sorted(specs))
        self.specs = specs
        self.infos: dict[str, ModelInfo] = {}
        self._preloaded: dict[str, LoadedModel] = {}
        for name, spec in specs.items():
            loaded = load_model(spec.path, name)  # raises ModelLoadError naming the file
            self.infos[name] = loaded.info
            if name == self.default:  # the replica builds its engine from it next: keep it, don't reload
                self._preloaded[name] = loaded
        scale = self.infos[self.default].scale
        if settings.upscale_scale != "auto" and scale != settings.upscale_scale:
            raise ValueError(
                f"model {self.default!r} ({specs[self.default].path}) upscales ×{scale} but "
                f"UPSCALE_SCALE={settings.upscale_scale}; choose a ×{settings.upscale_scale} model or set "
                f"UPSCALE_SCALE={scale}"
            )
        self.families = self._families(settings.scales)
        log.info("models: %s (default %s)", ", ".join(sorted(specs)), self.default)

    def _families(self, scales: tuple[int, ...]) -> dict[str, str]:
        """The models the quality policy routes to, with their family: at each served scale (the
        default's, or with ``UPSCALE_SCALE=auto`` both) the fidelity model (the default, or the bundled
        ``vcsr-m-x<scale>``) and, for each other family served there, the first model of that scale
        whose spec says it is of that family (``ModelSpec.family``: the name is never parsed)."""
        families: dict[str, str] = {}
        for scale in scales:
            fidelity = self.default if self.infos[self.default].scale == scale else default_model_name(scale)
            families.setdefault(fidelity, "fidelity")
            for family in SPECIALISTS:
                model = self._of_family(family, scale)
                if model is not None:
                    families.setdefault(model, family)
        return families

    def _of_family(self, family: Family, scale: int) -> str | None:
        """The first served model of ``scale`` whose spec declares ``family``."""
        return next(
            (n for n, s in self.specs.items() if s.family == family and self.infos[n].scale == scale),
            None,
        )

    @property
    def routed(self) -> list[str]:
        """The routed models, the default first. Every replica registers them with Serve's multiplexing
        at start, so autoscaled replicas share their load."""
        return list(self.families)

    def resolve(self, name: str | None) -> str:
        name = name or self.default
        if name not in self.specs:
            raise UnregisteredModelError(name, sorted(self.specs))
        return name

    def load(self, name: str) -> LoadedModel:
        """The model's module; the default's is the one loaded at start (handed out once)."""
        return self._preloaded.pop(name, None) or load_model(self.specs[name].path, name)

    def precision_loss_db(self, name: str) -> dict[str, float]:
        """Measured Set5 PSNR-Y loss of each reduced precision against fp32 (none for unmeasured files)."""
        return recorded_losses(self.specs[name].path)

    def summaries(self) -> list[ModelSummary]:
        return [
            ModelSummary(
                name=name,
                architecture=info.architecture,
                scale=info.scale,
                parameters=info.parameters,
                file_bytes=self.specs[name].path.stat().st_size,
                description=self.specs[name].description,
                default=name == self.default,
                supports_half=info.supports_half,
                supports_bfloat16=info.supports_bfloat16,
                psnr=_scores(self.specs[name].path),
                routed_as=self.families.get(name),
                conditions=info.conditions,
            )
            for name, info in sorted(self.infos.items())
        ]
