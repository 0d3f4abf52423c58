"""The routing-metrics table: the policy's conditions, the measured values and the histograms read it."""

from dataclasses import fields

import pytest

from configs import routing_metrics
from configs.quality_policy import QualityPolicyError, parse_policy
from configs.routing_metrics import RoutingMetric, metric_names
from deployments.flow.quality import ImageQuality

QUALITY = ImageQuality(resolution=0.2, sharpness=0.5, jpeg_quality=None, noise=2.0, measured_at_scale=0.125)


def policy_on(metric: str) -> dict[str, object]:
    return {
        "rules": [
            {"name": "small", "when": {metric: {"max": 0.5}}, "route": "upscale", "model": "real"},
            {"name": "rest", "route": "store"},
        ]
    }


def test_every_routing_metric_is_a_value_the_flow_measures() -> None:
    assert set(metric_names()) <= {f.name for f in fields(ImageQuality)}
    assert QUALITY.routing_values() == {"resolution": 0.2, "sharpness": 0.5, "jpeg_quality": None, "noise": 2.0}


def test_a_metric_added_to_the_table_can_be_routed_on(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(QualityPolicyError, match=r"unknown metric measured_at_scale; a rule can bound resolution"):
        parse_policy(policy_on("measured_at_scale"))
    extra = RoutingMetric("measured_at_scale", "1 or 0.125", "Scale the metrics were measured at")
    monkeypatch.setattr(routing_metrics, "ROUTING_METRICS", (*routing_metrics.ROUTING_METRICS, extra))
    policy = parse_policy(policy_on("measured_at_scale"))
    assert QUALITY.routing_values()["measured_at_scale"] == 0.125
    assert policy.decide(QUALITY.routing_values(), 0.5).rule == "small"
