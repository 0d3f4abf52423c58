"""The monitoring and KubeRay files in ``configs/`` agree with the code they describe.

Every metric a dashboard query reads is one this service or Ray Serve 2.60 exports, under the name
Ray gives it in Prometheus; Prometheus finds Ray's nodes through the file Ray writes; the RayService
runs the cluster serve config on GPU workers that Ray's autoscaler can add.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import ray.serve
import yaml
from ray._private.ray_constants import PROMETHEUS_SERVICE_DISCOVERY_FILE
from ray.serve.schema import ServeDeploySchema

from configs.routing_metrics import ROUTING_METRICS

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS = ROOT / "configs" / "monitoring" / "prometheus.yml"
DASHBOARD = ROOT / "configs" / "monitoring" / "grafana-dashboard.json"
RAYSERVICE = ROOT / "configs" / "kuberay" / "rayservice.yaml"
CLUSTER_CONFIG = ROOT / "configs" / "serve_config.cluster.yaml"
SERVE_CONFIG = ROOT / "serve_config.yaml"

# ray.serve.metrics adds these tags to every metric a replica records; "le" is a histogram's bucket label.
SERVE_TAGS = frozenset({"deployment", "replica", "application", "route"})
METRIC_REF = re.compile(r"\bray_\w+")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
MATCHER = re.compile(r"[{,]\s*(\w+)\s*(?:=~|!~|!=|=)")
GPU = "nvidia.com/gpu"


@dataclass(frozen=True)
class Metric:
    name: str  # as passed to ray.serve.metrics / ray.util.metrics
    kind: str  # Counter, Gauge or Histogram
    tags: frozenset[str]

    @property
    def series(self) -> frozenset[str]:
        """Names in Prometheus: Ray prefixes ``ray_``; a counter's name ends in ``_total`` (added when the
        code leaves it off, never doubled); a histogram is only its ``_bucket``, ``_sum`` and ``_count``."""
        base = f"ray_{self.name}"
        if self.kind == "Counter":
            return frozenset({base.removesuffix("_total") + "_total"})
        if self.kind == "Histogram":
            return frozenset(base + suffix for suffix in ("_bucket", "_sum", "_count"))
        return frozenset({base})


def metrics_defined_in(path: Path) -> list[Metric]:
    """Every ``Counter("name", ...)``, ``Gauge(...)`` and ``Histogram(...)`` call with a literal name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        kind = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        name = node.args[0]
        if kind not in {"Counter", "Gauge", "Histogram"}:
            continue
        if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
            continue
        tag_keys = next((kw.value for kw in node.keywords if kw.arg == "tag_keys"), None)
        tags = (
            frozenset(e.value for e in tag_keys.elts if isinstance(e, ast.Constant) and isinstance(e.value, str))
            if isinstance(tag_keys, ast.Tuple)
            else frozenset()
        )
        found.append(Metric(name.value, kind, tags))
    return found


@cache
def own_metrics() -> tuple[Metric, ...]:
    """The metrics named in the code, and the quality histograms made from the routing-metrics table."""
    named = tuple(m for path in sorted((ROOT / "deployments").glob("**/*metrics.py")) for m in metrics_defined_in(path))
    tabled = tuple(Metric(m.histogram, "Histogram", frozenset()) for m in ROUTING_METRICS if m.buckets is not None)
    return named + tabled


@cache
def serve_metrics() -> tuple[Metric, ...]:
    """Ray Serve's own metrics, read from the installed Ray's source."""
    private = Path(ray.serve.__file__).parent / "_private"
    return tuple(
        m for path in sorted(private.rglob("*.py")) for m in metrics_defined_in(path) if m.name.startswith("serve_")
    )


def queries(node: Any) -> Iterator[str]:
    """Every PromQL string in the dashboard: panel targets and template-variable queries."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"expr", "query", "definition"} and isinstance(value, str):
                yield value
            else:
                yield from queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from queries(item)


def datasources(node: Any) -> Iterator[Any]:
    """Every ``datasource`` field in the dashboard, panels, targets and variables alike."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield value
            yield from datasources(value)
    elif isinstance(node, list):
        for item in node:
            yield from datasources(item)


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def rayservice() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(RAYSERVICE.read_text())
    return loaded


def serve_config(text: str) -> ServeDeploySchema:
    return ServeDeploySchema.model_validate(yaml.safe_load(text))


def containers(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    return [c for group in groups for c in group["template"]["spec"]["containers"]]


def gpus(container: dict[str, Any]) -> int:
    return int(container.get("resources", {}).get("limits", {}).get(GPU, 0))


@pytest.mark.parametrize(
    ("path", "load"),
    [(PROMETHEUS, yaml.safe_load), (DASHBOARD, json.loads), (RAYSERVICE, yaml.safe_load)],
    ids=lambda v: v.name if isinstance(v, Path) else "",
)
def test_file_parses_to_a_mapping(path: Path, load: Any) -> None:
    assert isinstance(load(path.read_text()), dict)


def test_the_code_defines_the_custom_metrics() -> None:
    names = {m.name for m in own_metrics()}
    assert {"upscaler_uploads_total", "upscaler_request_seconds", "upscaler_tiles_total"} <= names
    assert {"serve_replica_processing_queries", "serve_deployment_request_counter"} <= {m.name for m in serve_metrics()}


def test_every_metric_the_dashboard_reads_is_exported() -> None:
    exported = {series for m in own_metrics() + serve_metrics() for series in m.series}
    unknown = {ref for expr in queries(dashboard()) for ref in METRIC_REF.findall(expr)} - exported
    assert not unknown, f"the dashboard reads metrics nothing exports: {sorted(unknown)}"


def test_every_custom_metric_has_a_panel() -> None:
    read = {ref for expr in queries(dashboard()) for ref in METRIC_REF.findall(expr)}
    unread = [m.name for m in own_metrics() if not m.series & read]
    assert not unread, f"custom metrics without a dashboard panel: {unread}"


def test_dashboard_groups_and_filters_custom_metrics_only_by_their_tags() -> None:
    by_series = {series: m for m in own_metrics() for series in m.series}
    for expr in queries(dashboard()):
        refs = set(METRIC_REF.findall(expr))
        if not refs or not refs <= by_series.keys():
            continue
        allowed = SERVE_TAGS | {"le"} | {tag for ref in refs for tag in by_series[ref].tags}
        labels = {label.strip() for group in GROUPING.findall(expr) for label in group.split(",") if label.strip()}
        labels |= set(MATCHER.findall(expr))
        assert labels <= allowed, f"{expr}: labels {sorted(labels - allowed)} are not tags of {sorted(refs)}"


def test_every_query_goes_through_the_datasource_variable() -> None:
    board = dashboard()
    (variable,) = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
    assert (variable["name"], variable["query"]) == ("datasource", "prometheus")
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert panels
    assert all(panel["targets"] for panel in panels)
    found = list(datasources(board))
    assert len(found) > len(panels)
    for source in found:
        assert source == {"type": "prometheus", "uid": "${datasource}"}


def test_prometheus_discovers_nodes_through_the_file_ray_writes() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    files = [f for job in config["scrape_configs"] for sd in job.get("file_sd_configs", []) for f in sd["files"]]
    # Ray's default temp folder, and the container image's (RAY_TMPDIR=/data): a pattern that matches no
    # file is quiet, a missing file would be an error at every refresh.
    stem = PROMETHEUS_SERVICE_DISCOVERY_FILE.removesuffix(".json")
    assert files == [f"/tmp/ray/{stem}*.json", f"/data/ray/{stem}*.json"]


def test_rayservice_is_a_kuberay_v1_rayservice_with_a_valid_serve_config() -> None:
    service = rayservice()
    assert (service["apiVersion"], service["kind"]) == ("ray.io/v1", "RayService")
    assert isinstance(service["spec"]["serveConfigV2"], str), "serveConfigV2 must be a YAML string"
    (app,) = serve_config(service["spec"]["serveConfigV2"]).applications
    (local,) = serve_config(SERVE_CONFIG.read_text()).applications
    assert app.import_path == local.import_path
    assert [d.name for d in app.deployments] == [d.name for d in local.deployments]
    assert {d.name for d in app.deployments} == {"Ingress", "Upscaler", "Storage", "JobsConsumer"}


def test_rayservice_runs_the_cluster_config_with_a_gpu_per_upscaler() -> None:
    k8s = serve_config(rayservice()["spec"]["serveConfigV2"]).model_dump(exclude_unset=True)
    cluster = serve_config(CLUSTER_CONFIG.read_text()).model_dump(exclude_unset=True)
    upscaler = next(d for d in k8s["applications"][0]["deployments"] if d["name"] == "Upscaler")
    assert upscaler["ray_actor_options"]["num_gpus"] == 1
    assert k8s == cluster


def test_gpu_workers_scale_from_zero_up_to_the_upscaler_ceiling() -> None:
    spec = rayservice()["spec"]
    cluster = spec["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True
    assert not any(gpus(c) for c in cluster["headGroupSpec"]["template"]["spec"]["containers"])
    (group,) = [g for g in cluster["workerGroupSpecs"] if any(gpus(c) for c in g["template"]["spec"]["containers"])]
    assert group["minReplicas"] == 0
    (app,) = serve_config(spec["serveConfigV2"]).model_dump(exclude_unset=True)["applications"]
    upscaler = next(d for d in app["deployments"] if d["name"] == "Upscaler")
    per_pod = sum(gpus(c) for c in group["template"]["spec"]["containers"])
    needed = upscaler["autoscaling_config"]["max_replicas"] * upscaler["ray_actor_options"]["num_gpus"]
    assert group["maxReplicas"] * per_pod >= needed


def test_every_ray_pod_gets_storage_settings_from_the_secret_and_exports_metrics() -> None:
    cluster = rayservice()["spec"]["rayClusterConfig"]
    pods = containers(cluster)
    assert len({c["image"] for c in pods}) == 1
    for container in pods:
        env = {e["name"]: e for e in container["env"]}
        for name in ("S3_BUCKET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            ref = env[name]["valueFrom"]["secretKeyRef"]
            assert (ref["key"], ref.get("optional", False)) == (name, False), container["name"]
        assert {"containerPort": 8080, "name": "metrics"} in container["ports"]
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        assert group["rayStartParams"]["metrics-export-port"] == "8080"


def test_metric_descriptions_are_ascii() -> None:
    """Ray's Cython metrics refuse non-ASCII text: one σ in a description fails the replica at start."""
    for path in sorted((ROOT / "deployments").glob("**/*metrics.py")):
        offending = [line for line in path.read_text().splitlines() if not line.isascii()]
        assert not offending, f"{path.relative_to(ROOT)}: {offending}"
