"""Ray's autoscaler adds and removes nodes for the cluster Serve config, with Ray's fake multi-node
provider (real local raylets started and stopped on demand, as KubeRay adds and removes pods).

The head offers no CPUs (as in configs/kuberay/rayservice.yaml); two node types start from zero: `cpu`
(offers `cpu_pool`, for Ingress and Storage) and `gpu` (a GPU counted by Ray only, for the Upscaler).
Deploying adds one node of each, the app answers, and deleting it leaves both idle, so both go.
The provider's start and shutdown run `ray stop --force`: this module runs only under scripts/isolated.
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray
from ray import serve
from ray.cluster_utils import AutoscalingCluster

from bench.s3servers import S3Server, moto_server
from tests.multinode.cluster import APP, cluster_config, deploy, small_png, wait_for
from tests.multinode.conftest import SERVE_PORT

pytestmark = pytest.mark.multinode

WORKER_TYPES = {
    "cpu": {"resources": {"CPU": 2, "cpu_pool": 1000}, "node_config": {}, "min_workers": 0, "max_workers": 1},
    "gpu": {"resources": {"CPU": 4, "GPU": 1}, "node_config": {}, "min_workers": 0, "max_workers": 2},
}
AUTOSCALING = {name: {"min_replicas": 1, "max_replicas": 1} for name in ("Ingress", "Upscaler", "Storage")}


class InlineAutoscalingCluster(AutoscalingCluster):
    """Ray 2.60's wheel lacks the fake provider's example.yaml that ``_generate_config`` starts from: the
    same settings, written here (provider options as in Ray's file; nodes idle 6 s are removed)."""

    def _generate_config(
        self,
        head_resources: dict[str, Any],
        worker_node_types: dict[str, Any],
        autoscaler_v2: bool = False,
        **config_kwargs: Any,
    ) -> dict[str, Any]:
        head = {"resources": head_resources, "node_config": {}, "max_workers": 0}
        config: dict[str, Any] = {
            "cluster_name": "fake_multinode",
            "max_workers": 8,
            "provider": {
                "type": "fake_multinode",
                "use_node_id_as_ip": True,
                "disable_node_updaters": True,
                "disable_launch_config_check": True,
            },
            "available_node_types": {**copy.deepcopy(worker_node_types), "ray.head.default": head},
            "head_node_type": "ray.head.default",
            "auth": {},
            "upscaling_speed": 1.0,
            "idle_timeout_minutes": 0.1,
            "docker": {},
            **{key: [] for key in ("initialization_commands", "setup_commands", "head_setup_commands")},
            **{key: [] for key in ("worker_setup_commands", "head_start_ray_commands", "worker_start_ray_commands")},
            "file_mounts": {},
            "cluster_synced_files": [],
            "file_mounts_sync_continuously": False,
            "rsync_exclude": [],
            "rsync_filter": [],
        }
        config.update(config_kwargs)
        return config


def worker_nodes() -> dict[str, int]:
    """Live worker nodes per type (by the resource only that type offers)."""
    alive = [n["Resources"] for n in ray.nodes() if n["Alive"]]
    return {"cpu": sum("cpu_pool" in r for r in alive), "gpu": sum("GPU" in r for r in alive)}


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_server("autoscaling-test") as server:
        yield server


@pytest.fixture(scope="module")
def autoscaling_cluster(s3: S3Server) -> Iterator[str]:
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"  # its `ray` commands
    port = SERVE_PORT
    cluster = InlineAutoscalingCluster(head_resources={"CPU": 0}, worker_node_types=WORKER_TYPES)
    cluster.start()
    ray.init(address="auto", logging_level="WARNING", log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        settings = {"device": "cpu", "s3_bucket": s3.bucket, "s3_endpoint_url": s3.endpoint}
        settings["s3_addressing_style"] = "path"
        assert worker_nodes() == {"cpu": 0, "gpu": 0}
        deploy(cluster_config(port, settings, AUTOSCALING))
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()
        cluster.shutdown()


def test_replicas_that_cannot_be_placed_add_a_node_of_the_type_they_need(autoscaling_cluster: str) -> None:
    assert worker_nodes() == {"cpu": 1, "gpu": 1}
    response = httpx.post(
        f"{autoscaling_cluster}/api/images/upload", files={"image": ("one.png", small_png(1))}, timeout=120
    )
    assert response.status_code == 200, response.text
    assert response.json()["result"]["folder"] == "upscaled"


def test_idle_nodes_are_removed(autoscaling_cluster: str) -> None:
    serve.delete(APP)
    wait_for(lambda: worker_nodes() == {"cpu": 0, "gpu": 0}, 120, "the idle worker nodes to be removed", every_s=1)


def test_this_module_sees_no_process_outside_its_namespace() -> None:
    """What `ray stop --force` can reach: only this namespace's processes, under scripts/isolated's shell."""
    init = Path("/proc/1/cmdline").read_bytes().split(b"\0")
    assert b"vcs-isolated-ray" in init
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            pid = int(proc.name)
            while pid > 1:  # every visible process descends from this namespace's init
                try:
                    pid = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError):  # it ended meanwhile
                    pid = 1
            assert pid in (0, 1)
