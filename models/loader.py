"""Loading weights into a ready ``nn.Module`` with the facts the service needs.

Our own networks ship as safetensors files whose metadata names the architecture and its config;
anything else is handed to spandrel, which recognises the community architectures (Real-ESRGAN,
ESRGAN, SwinIR, HAT, DAT, …) from the state dict and loads with an allow-listed unpickler. A file that
cannot be loaded raises ``ModelLoadError`` naming the file, so a replica fails at start-up, not on a
request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from models.arch import VCSR, VCSRConfig
from models.engine import ModelInfo

VCSR_FORMAT = "vcsr"
# Community networks' receptive fields are unknown here; 16 input pixels of overlap keeps seams
# below one grey level for the convolutional families spandrel loads.
DEFAULT_TILE_MARGIN = 16


class ModelLoadError(RuntimeError):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot load model file {str(path)!r}: {reason}")
        self.path = path


@dataclass(frozen=True)
class LoadedModel:
    module: nn.Module
    info: ModelInfo


def save_vcsr(model: VCSR, path: Path, extra: dict[str, str] | None = None) -> None:
    metadata = {"format": VCSR_FORMAT, "config": json.dumps(model.config.to_dict()), **(extra or {})}
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata=metadata)


def read_metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def _load_vcsr(path: Path, name: str, metadata: dict[str, str]) -> LoadedModel:
    config = VCSRConfig(**json.loads(metadata["config"]))
    module = VCSR(config)
    module.load_state_dict(load_file(str(path)), strict=True)
    info = ModelInfo(
        name=name,
        architecture="VCSR",
        scale=config.scale,
        parameters=sum(p.numel() for p in module.parameters()),
        tile_margin=config.receptive_radius,
        supports_half=True,
        supports_bfloat16=True,
        conditions=config.conditions,
    )
    return LoadedModel(module, info)


def _load_spandrel(path: Path, name: str) -> LoadedModel:
    import spandrel  # deferred: it imports torchvision, which costs a second at start-up

    descriptor = spandrel.ModelLoader().load_from_file(str(path))
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise ModelLoadError(path, f"{descriptor.architecture.name} is not an image-to-image model")
    if descriptor.input_channels != 3 or descriptor.output_channels != 3:
        raise ModelLoadError(path, "only RGB→RGB models are served")
    info = ModelInfo(
        name=name,
        architecture=descriptor.architecture.name,
        scale=descriptor.scale,
        parameters=sum(p.numel() for p in descriptor.model.parameters()),
        tile_margin=DEFAULT_TILE_MARGIN,
        supports_half=descriptor.supports_half,
        supports_bfloat16=descriptor.supports_bfloat16,
        min_size=descriptor.size_requirements.minimum,
        size_multiple=descriptor.size_requirements.multiple_of,
        square=descriptor.size_requirements.square,
        tiling=descriptor.tiling.name.lower(),
    )
    return LoadedModel(descriptor.model, info)


def load_model(path: Path, name: str | None = None) -> LoadedModel:
    """Load ``path`` (our safetensors or any spandrel-supported file) as an eval-mode module."""
    name = name or path.stem
    if not path.is_file():
        raise ModelLoadError(path, "no such file")
    try:
        if path.suffix == ".safetensors":
            metadata = read_metadata(path)
            if metadata.get("format") == VCSR_FORMAT:
                return _load_vcsr(path, name, metadata)
        return _load_spandrel(path, name)
    except ModelLoadError:
        raise
    except Exception as exc:  # any parser or shape error means the same thing to the operator
        raise ModelLoadError(path, f"{type(exc).__name__}: {exc}") from exc
