"""The quality policy: the default keeps the seed's routing, rules decide in order, errors name the rule."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from configs.quality_policy import Family, QualityPolicyError, load_policy, parse_policy, scale_for
from models import registry

CLEAN = {"resolution": 0.1, "sharpness": 0.65, "jpeg_quality": None, "noise": 0.8}


@pytest.fixture(scope="module")
def policy():  # type: ignore[no-untyped-def]
    return load_policy()


@pytest.mark.parametrize("resolution", [0.0, 0.2, 0.49999, 0.5, 0.51, 1.0, 4.0])
def test_the_default_routes_store_vs_upscale_on_resolution_exactly_as_the_seed(policy, resolution: float) -> None:  # type: ignore[no-untyped-def]
    for metrics in (CLEAN, {**CLEAN, "jpeg_quality": 20, "noise": 12.0, "sharpness": 0.1}):
        decision = policy.decide({**metrics, "resolution": resolution}, 0.5)
        assert (decision.route == "store") is (resolution >= 0.5)


@pytest.mark.parametrize(
    ("change", "rule", "model"),
    [
        ({}, "clean", "fidelity"),
        ({"jpeg_quality": 30}, "jpeg-artefacts", "jpeg"),
        ({"jpeg_quality": 80}, "jpeg-artefacts", "jpeg"),
        ({"jpeg_quality": 50, "noise": 6.0, "sharpness": 0.3}, "jpeg-artefacts", "jpeg"),
        ({"jpeg_quality": 90}, "clean", "fidelity"),
        ({"noise": 5.0}, "noisy", "real"),
        ({"sharpness": 0.3}, "blurred", "real"),
    ],
)
def test_the_default_picks_a_specialist_past_its_limits(policy, change, rule, model) -> None:  # type: ignore[no-untyped-def]
    decision = policy.decide({**CLEAN, **change}, 0.5)
    assert (decision.rule, decision.route, decision.model) == (rule, "upscale", model)


def rules(*extra: dict[str, object]) -> dict[str, object]:
    return {"rules": [*extra, {"name": "rest", "route": "upscale", "model": "fidelity"}]}


def test_a_rule_names_the_model_families_the_registry_knows_and_no_other() -> None:
    assert get_args(Family) == get_args(registry.Family)
    jpeg = rules({"name": "jpeg", "when": {"jpeg_quality": {"max": 80}}, "route": "upscale", "model": "jpeg"})
    assert parse_policy(jpeg).decide({**CLEAN, "jpeg_quality": 50}, 0.5).model == "jpeg"
    with pytest.raises(QualityPolicyError, match=r"rule 1 \('odd'\): model"):
        parse_policy(rules({"name": "odd", "route": "upscale", "model": "anime"}))


def test_a_missing_metric_fails_its_condition() -> None:
    policy = parse_policy(rules({"name": "hq-jpeg", "when": {"jpeg_quality": {"min": 90}}, "route": "store"}))
    assert policy.decide({**CLEAN, "jpeg_quality": None}, 0.5).rule == "rest"
    assert policy.decide({**CLEAN, "jpeg_quality": 95}, 0.5).rule == "hq-jpeg"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            rules({"name": "noisy", "when": {"noise": {"mn": 3}}, "route": "upscale", "model": "real"}),
            r"rule 1 \('noisy'\): when\.noise\.mn: Extra inputs",
        ),
        (rules({"name": "odd", "when": {"colourfulness": {"min": 1}}, "route": "store"}), r"rule 1 \('odd'\): when"),
        (rules({"name": "keep", "route": "store", "model": "real"}), r"rule 1 \('keep'\).*cannot name a model"),
        (rules({"name": "up", "route": "upscale"}), r"rule 1 \('up'\).*needs model"),
        (rules({"name": "empty", "when": {"noise": {}}, "route": "store"}), r"rule 1 \('empty'\).*min, max"),
        (rules({"name": "b", "route": "upscale", "model": "best"}), r"rule 1 \('b'\): model"),
        ({"rules": [{"name": "only", "when": {"noise": {"min": 1}}, "route": "store"}]}, "must have no conditions"),
        ({"rules": [], "extra": 1}, "extra: Extra inputs"),
    ],
)
def test_bad_policies_are_refused_naming_the_rule(raw: dict[str, object], message: str) -> None:
    with pytest.raises(QualityPolicyError, match=message):
        parse_policy(raw)


def test_an_unreadable_file_is_a_policy_error(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("rules: [")
    with pytest.raises(QualityPolicyError, match="cannot read"):
        load_policy(bad)


@pytest.mark.parametrize(
    ("score", "scales", "expected"),
    [
        (0.25, (2, 4), 2),  # 1080p: ×2 makes it 4K
        (0.124, (2, 4), 4),  # ×2 gives 0.496, just short of 0.5
        (0.125, (4, 2), 2),  # ×2 gives exactly the threshold; the order given does not matter
        (0.001, (2, 4), 4),  # nothing reaches it: the largest
        (0.001, (2,), 2),  # a fixed UPSCALE_SCALE is the only choice
    ],
)
def test_auto_scale_is_the_smallest_that_reaches_the_threshold(
    score: float, scales: tuple[int, ...], expected: int
) -> None:
    assert scale_for(score, 0.5, scales) == expected
