"""The quality policy: rules over an upload's no-reference metrics that route it.

``configs/quality_policy.yaml`` (or the file ``QUALITY_POLICY`` names) lists rules in order; the first
whose every condition holds decides (a) whether the image is stored as uploaded or upscaled and (b)
which model family upscales it: ``fidelity`` (the configured model, e.g. ``vcsr-m-x2``, best on clean
inputs), ``real`` (the served model whose ``ModelSpec.family`` is ``real``, trained on JPEG, noise and
blur) or ``jpeg`` (a specialist for JPEG uploads; where none is served at the scale, the real-world
model stands in, ``deployments/flow/families.py``). The last rule must match everything. A condition
bounds one metric of ``configs/routing_metrics.py`` (``min`` ≤ value ≤ ``max``, inclusive); a metric that
is ``None`` (``jpeg_quality`` of a PNG) fails every condition on it. ``min: threshold`` on ``resolution``
stands for the service's ``QUALITY_THRESHOLD``, so the default policy keeps the seed's routing.

The scale is ``UPSCALE_SCALE``; with ``UPSCALE_SCALE=auto`` it is ``scale_for``'s: the smallest bundled
scale that lifts the resolution score to the threshold (×4 when even that falls short).

An explicit ``model`` in a request always wins over the policy's family. The result names the rule
that decided (``result.route``). Errors name the bad rule: ``rule 2 ('noisy'): when.noise.mn: …``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from configs.routing_metrics import metric_names

DEFAULT_POLICY = Path(__file__).resolve().with_name("quality_policy.yaml")
# The model families a rule can name: models.registry.Family, the same three (configs does not import models).
Family = Literal["fidelity", "real", "jpeg"]


class QualityPolicyError(ValueError):
    """A policy file that cannot be used, with every problem named by its rule."""


class Bound(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min: float | Literal["threshold"] | None = None
    max: float | Literal["threshold"] | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Bound:
        if self.min is None and self.max is None:
            raise ValueError("a condition needs min, max or both")
        return self

    def holds(self, value: float | None, threshold: float) -> bool:
        if value is None:
            return False
        low = threshold if self.min == "threshold" else self.min
        high = threshold if self.max == "threshold" else self.max
        return (low is None or value >= low) and (high is None or value <= high)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    when: dict[str, Bound] = Field(default_factory=dict)  # keyed by a name of configs.routing_metrics
    route: Literal["store", "upscale"]
    model: Family | None = None

    @field_validator("when")
    @classmethod
    def _known_metrics(cls, when: dict[str, Bound]) -> dict[str, Bound]:
        unknown = sorted(set(when) - set(metric_names()))
        if unknown:
            raise ValueError(f"unknown metric {', '.join(unknown)}; a rule can bound {', '.join(metric_names())}")
        return when

    @model_validator(mode="after")
    def _model_only_when_upscaling(self) -> Rule:
        if self.route == "store" and self.model is not None:
            raise ValueError("a rule that stores the image cannot name a model")
        if self.route == "upscale" and self.model is None:
            raise ValueError(f"a rule that upscales needs model: {', '.join(get_args(Family))}")
        return self

    def matches(self, metrics: dict[str, float | int | None], threshold: float) -> bool:
        return all(bound.holds(metrics.get(name), threshold) for name, bound in self.when.items())


@dataclass(frozen=True)
class Decision:
    rule: str
    route: Literal["store", "upscale"]
    model: Family | None


class QualityPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _ends_with_a_catch_all(self) -> QualityPolicy:
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError(f"rule names must be unique, got {names}")
        if self.rules[-1].when:
            raise ValueError(f"the last rule ({self.rules[-1].name!r}) must have no conditions: it decides the rest")
        return self

    def decide(self, metrics: dict[str, float | int | None], threshold: float) -> Decision:
        for rule in self.rules:
            if rule.matches(metrics, threshold):
                return Decision(rule.name, rule.route, rule.model)
        raise AssertionError("unreachable: the last rule matches everything")


def scale_for(score: float, threshold: float, scales: tuple[int, ...]) -> int:
    """The smallest of ``scales`` whose output reaches ``threshold`` (a scale ``s`` multiplies the
    resolution score by ``s²``); the largest when none does."""
    ordered = sorted(scales)
    return next((s for s in ordered if score * s * s >= threshold), ordered[-1])


def _where(loc: tuple[int | str, ...], raw: Any) -> str:
    """``rule 2 ('noisy'): when.noise.mn`` for a location inside ``rules``; the path otherwise."""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        index = loc[1]
        rules = raw.get("rules") if isinstance(raw, dict) else None
        name = rules[index].get("name") if isinstance(rules, list) and isinstance(rules[index], dict) else None
        rest = ".".join(str(p) for p in loc[2:])
        return f"rule {index + 1} ({name!r})" + (f": {rest}" if rest else "")
    return ".".join(str(p) for p in loc) or "policy"


def parse_policy(raw: Any, source: str = "quality policy") -> QualityPolicy:
    try:
        return QualityPolicy.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{_where(tuple(e['loc']), raw)}: {e['msg']}" for e in exc.errors()]
        raise QualityPolicyError(f"invalid {source}:\n  " + "\n  ".join(problems)) from None


def load_policy(path: Path = DEFAULT_POLICY) -> QualityPolicy:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise QualityPolicyError(f"cannot read quality policy {path}: {exc}") from exc
    return parse_policy(raw, f"quality policy {path}")
