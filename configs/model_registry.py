"""The model registry file (``configs/models.yaml`` by default): models served by name besides the
bundled ones. Paths are relative to the file. Any file spandrel loads can be listed; its scale,
channels and precision support come from the file itself when the upscaler loads it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class RegistryError(ValueError):
    pass


class ModelEntry(BaseModel, frozen=True):
    name: str = Field(description="the name requests use (letters, digits, '.', '_', '-')")
    path: Path
    description: str = ""

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(f"model name {value!r} must be 1-64 letters, digits, '.', '_' or '-'")
        return value


class ModelRegistryFile(BaseModel):
    models: list[ModelEntry] = []


def load_registry(path: Path) -> list[ModelEntry]:
    """Entries with absolute paths; a missing file means no extra models."""
    if not path.is_file():
        return []
    try:
        document = ModelRegistryFile.model_validate(yaml.safe_load(path.read_text()) or {})
    except (yaml.YAMLError, ValidationError) as exc:
        raise RegistryError(f"model registry {path}: {exc}") from exc
    names = [e.name for e in document.models]
    if duplicates := sorted({n for n in names if names.count(n) > 1}):
        raise RegistryError(f"model registry {path}: duplicate names {duplicates}")
    return [e.model_copy(update={"path": (path.parent / e.path).resolve()}) for e in document.models]
