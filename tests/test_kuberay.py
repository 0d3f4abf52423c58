"""configs/kuberay/rayservice.yaml is a RayService KubeRay v1.7 accepts, validated strictly (an unknown
or misplaced field fails, where the API server would drop it), that frees GPU pods: CPU replicas run
in their own worker group, both groups start from zero, the image is pinned, the spool is on a
volume, the dashboard stays inside the cluster, and token auth and GCS fault tolerance are on. Its
custom resources are the group's ``resources`` field, its Redis URLs carry the password, the jobs
consumer scales on the queue through the broker URL of the Secret, a PodMonitor scrapes every pod, and
a worker pod is ready only once its own proxy routes the app."""

from __future__ import annotations

import copy
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from models.data import shared_root

ROOT = Path(__file__).resolve().parents[1]
RAYSERVICE = ROOT / "configs" / "kuberay" / "rayservice.yaml"
SPOOL_PVC = ROOT / "configs" / "kuberay" / "spool-pvc.yaml"
PODMONITOR = ROOT / "configs" / "kuberay" / "podmonitor.yaml"
CLUSTER_SERVE_CONFIG = ROOT / "configs" / "serve_config.cluster.yaml"
REDIS_URL = re.compile(r"rediss?://[^\s\"',}]+")
CRD = shared_root() / "schemas" / "kuberay-v1.7-rayservices-crd.yaml"


def strict(schema: Any) -> Any:
    """The CRD's OpenAPI schema as JSON Schema that refuses unknown fields: every object that lists its
    properties gets ``additionalProperties: false`` unless it says it keeps unknown fields."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    keeps_unknown = out.get("x-kubernetes-preserve-unknown-fields")
    if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out and not keeps_unknown:
        out["additionalProperties"] = False
    return out


@cache
def validator() -> jsonschema.Draft7Validator:
    if not CRD.is_file():
        pytest.fail(f"{CRD} is missing: the KubeRay CRD is read from ../shared/schemas")
    crd = yaml.safe_load(CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
    schema["properties"].pop("metadata")  # the API server checks metadata itself
    return jsonschema.Draft7Validator(schema)


def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(RAYSERVICE.read_text())
    return loaded


def errors(document: dict[str, Any]) -> list[str]:
    body = {k: v for k, v in document.items() if k != "metadata"}
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator().iter_errors(body)]


def cluster() -> dict[str, Any]:
    found: dict[str, Any] = manifest()["spec"]["rayClusterConfig"]
    return found


def group(name: str) -> dict[str, Any]:
    (found,) = [g for g in cluster()["workerGroupSpecs"] if g["groupName"] == name]
    return found


def pod_containers() -> list[dict[str, Any]]:
    groups = [cluster()["headGroupSpec"], *cluster()["workerGroupSpecs"]]
    return [c for g in groups for c in g["template"]["spec"]["containers"]]


def test_the_rayservice_validates_strictly_against_kuberay_v1_7() -> None:
    assert not errors(manifest())


@pytest.mark.parametrize(
    ("path", "key"),
    [
        (("spec", "rayClusterConfig"), "enableInTreeAutoscalling"),
        (("spec", "rayClusterConfig", "headGroupSpec"), "rayStartParam"),
        (("spec", "rayClusterConfig", "autoscalerOptions"), "idleTimeoutSecond"),
    ],
)
def test_a_misspelt_field_is_an_error(path: tuple[str, ...], key: str) -> None:
    document = manifest()
    node = document
    for part in path:
        node = node[part]
    node[key] = True
    assert any(key in error for error in errors(document))


def test_cpu_replicas_have_their_own_group_and_both_groups_start_from_zero() -> None:
    cpu, gpu = group("cpu"), group("gpu")
    for worker in (cpu, gpu):
        assert worker["minReplicas"] == 0 and worker["replicas"] == 0
    assert float(cpu["resources"]["cpu_pool"]) > 0
    assert "cpu_pool" not in gpu.get("resources", {})  # GPU pods offer no cpu_pool: CPU replicas can't land there
    assert cluster()["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    (app,) = yaml.safe_load(manifest()["spec"]["serveConfigV2"])["applications"]
    for deployment in app["deployments"]:
        options = deployment["ray_actor_options"]
        assert ("cpu_pool" in options.get("resources", {})) != (options.get("num_gpus", 0) > 0), deployment["name"]


def test_the_cpu_group_holds_every_cpu_replica_at_full_scale() -> None:
    (app,) = yaml.safe_load(manifest()["spec"]["serveConfigV2"])["applications"]
    needed = sum(
        d["autoscaling_config"]["max_replicas"] * d["ray_actor_options"]["num_cpus"]
        for d in app["deployments"]
        if "cpu_pool" in d["ray_actor_options"].get("resources", {})
    )
    cpu = group("cpu")
    assert cpu["maxReplicas"] * int(cpu["rayStartParams"]["num-cpus"]) >= needed


def test_every_pod_runs_one_pinned_image() -> None:
    images = {c["image"] for c in pod_containers()}
    assert len(images) == 1
    (image,) = images
    assert ":" in image and not image.endswith(":latest")


def test_the_spool_is_a_shared_volume_on_the_pods_that_run_storage() -> None:
    pvc = yaml.safe_load(SPOOL_PVC.read_text())
    assert pvc["kind"] == "PersistentVolumeClaim" and pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    spec = group("cpu")["template"]["spec"]
    (volume,) = [v for v in spec["volumes"] if v.get("persistentVolumeClaim")]
    assert volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    (container,) = spec["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SPOOL_DIR"] == mount["mountPath"]


def test_the_dashboard_stays_in_the_cluster_behind_token_auth() -> None:
    head = cluster()["headGroupSpec"]
    assert head.get("serviceType", "ClusterIP") == "ClusterIP" and not head.get("enableIngress", False)
    assert cluster()["authOptions"]["mode"] == "token"


def test_gcs_fault_tolerance_keeps_cluster_state_in_redis() -> None:
    options = cluster()["gcsFaultToleranceOptions"]
    assert options["redisAddress"].startswith("redis://")
    assert options["redisPassword"]["valueFrom"]["secretKeyRef"]["name"] == "upscaler-redis"


def serve_app_config() -> dict[str, Any]:
    (app,) = yaml.safe_load(manifest()["spec"]["serveConfigV2"])["applications"]
    found: dict[str, Any] = app
    return found


def deployment(name: str) -> dict[str, Any]:
    (found,) = [d for d in serve_app_config()["deployments"] if d["name"] == name]
    return found


def test_custom_resources_are_the_groups_resources_field_not_json_in_ray_start_params() -> None:
    groups = [cluster()["headGroupSpec"], *cluster()["workerGroupSpecs"]]
    assert not [g for g in groups if "resources" in g["rayStartParams"]]
    assert group("cpu")["resources"] == {"cpu_pool": "1000"}


@pytest.mark.parametrize("path", [RAYSERVICE, CLUSTER_SERVE_CONFIG], ids=lambda p: p.name)
def test_every_redis_url_carries_the_password_the_redis_requires(path: Path) -> None:
    """The only URL without one is GCS fault tolerance's address, whose password KubeRay passes apart."""
    gcs = cluster()["gcsFaultToleranceOptions"]
    assert gcs["redisPassword"]["valueFrom"]["secretKeyRef"]["name"] == "upscaler-redis"
    urls = [u for u in REDIS_URL.findall(path.read_text()) if u != gcs["redisAddress"]]
    assert not [u for u in urls if not re.match(r"rediss?://[^/@]*:[^/@]+@", u)], urls


def test_the_jobs_consumer_scales_on_the_queue_of_the_broker_in_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy as Serve's controller makes it from the config (imported, pickled by value, then
    instantiated with ``policy_kwargs``) watches the queue at JOBS_BROKER_URL, password included."""
    from ray.serve._private.autoscaling_state import _resolve_policy_callable
    from ray.serve.config import AutoscalingConfig

    from deployments.jobs.autoscaling import JobsQueuePolicy
    from deployments.jobs.deployment import QUEUE

    config = deployment("JobsConsumer")["autoscaling_config"]
    policy = config["policy"]
    assert policy["policy_function"] == "deployments.jobs.autoscaling:JobsQueuePolicy"
    assert "broker_url" not in policy["policy_kwargs"] and policy["policy_kwargs"]["queue_name"] == QUEUE
    monkeypatch.setenv("JOBS_BROKER_URL", "redis://:pw@upscaler-redis:6379/1")
    made = _resolve_policy_callable(AutoscalingConfig(**config).policy)
    assert type(made).__name__ == JobsQueuePolicy.__name__  # a copy of the class: Serve pickles it by value
    assert made._broker_url == "redis://:pw@upscaler-redis:6379/1"
    head_env = {e["name"]: e for e in cluster()["headGroupSpec"]["template"]["spec"]["containers"][0]["env"]}
    # Serve's controller, where the policy runs, is on the head: the Secret's URL must be in its environment.
    secret = {"name": "upscaler-redis", "key": "JOBS_BROKER_URL"}
    assert head_env["JOBS_BROKER_URL"]["valueFrom"]["secretKeyRef"] == secret


def test_a_podmonitor_scrapes_the_metrics_port_of_every_ray_pod() -> None:
    monitor = yaml.safe_load(PODMONITOR.read_text())
    assert (monitor["apiVersion"], monitor["kind"]) == ("monitoring.coreos.com/v1", "PodMonitor")
    wanted = monitor["spec"]["selector"]["matchLabels"]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    for pod_group in [cluster()["headGroupSpec"], *cluster()["workerGroupSpecs"]]:
        labels = pod_group["template"]["metadata"]["labels"]
        assert wanted.items() <= labels.items()
        (container,) = pod_group["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports[endpoint["port"]] == int(pod_group["rayStartParams"]["metrics-export-port"])


def probe_urls(probe: dict[str, Any]) -> list[str]:
    command = probe["exec"]["command"]
    assert command[:3] == ["python", "-m", "serve_app.probe"]  # the image has no wget for KubeRay's default probes
    urls: list[str] = command[3:]
    return urls


def test_a_worker_pod_is_ready_only_once_its_own_proxy_routes_the_app() -> None:
    port = yaml.safe_load(manifest()["spec"]["serveConfigV2"])["http_options"]["port"]
    for worker in cluster()["workerGroupSpecs"]:
        (container,) = worker["template"]["spec"]["containers"]
        ready = probe_urls(container["readinessProbe"])
        assert f"http://127.0.0.1:{port}/api/health" in ready, worker["groupName"]
        assert "http://127.0.0.1:52365/api/local_raylet_healthz" in ready
        assert probe_urls(container["livenessProbe"]) == ["http://127.0.0.1:52365/api/local_raylet_healthz"]


def test_the_heads_probes_leave_its_proxy_to_kuberay() -> None:
    """A head that fails readiness leaves the head Service the workers join through."""
    (container,) = cluster()["headGroupSpec"]["template"]["spec"]["containers"]
    assert not [u for u in probe_urls(container["readinessProbe"]) if ":8000/" in u]
    assert "http://127.0.0.1:8265/api/gcs_healthz" in probe_urls(container["readinessProbe"])


def test_ray_keeps_its_temp_folder_where_kuberay_shares_it_between_the_head_and_the_autoscaler() -> None:
    """The image moves Ray's temp folder onto its /data volume (RAY_TMPDIR); KubeRay's log volume is /tmp/ray."""
    autoscaler = {e["name"]: e["value"] for e in cluster()["autoscalerOptions"]["env"]}
    assert autoscaler["RAY_TMPDIR"] == "/tmp"
    for container in pod_containers():
        assert {e["name"]: e.get("value") for e in container["env"]}["RAY_TMPDIR"] == "/tmp"
