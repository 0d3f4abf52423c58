"""configs/kuberay/rayservice.yaml is a RayService KubeRay v1.7 accepts, validated strictly (an unknown
or misplaced field fails, where the API server would drop it), that frees GPU pods: CPU replicas run
in their own worker group, both groups start from zero, the image is pinned, the spool is on a
volume, the dashboard stays inside the cluster, and token auth and GCS fault tolerance are on."""

from __future__ import annotations

import copy
import json
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
    assert "cpu_pool" in json.loads(json.loads(cpu["rayStartParams"]["resources"]))
    assert "resources" not in gpu["rayStartParams"]  # GPU pods offer no cpu_pool: CPU replicas can't land there
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
