"""The cluster Serve config on a three-node Ray cluster on this machine: a head that offers `cpu_pool`
(the CPU group) and two nodes with two GPUs each, counted by Ray only (the app runs with DEVICE=cpu).

Under a load step the upscaler grows to three replicas on both GPU nodes and every replica serves
uploads (each registers the default model with Serve's multiplexing, so the router spreads requests
that name it); every upload is answered correctly; the upscaler shrinks back after the load; Ingress
and Storage replicas stay on the CPU node.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
from ray import serve
from ray.cluster_utils import Cluster

from bench.s3servers import S3Server, moto_server
from tests.multinode.cluster import (
    APP,
    LoadStep,
    calls_per_replica,
    cluster_config,
    deploy,
    replica_nodes,
    router_view,
    running_replicas,
    served_per_replica,
    wait_for,
)
from tests.multinode.conftest import SERVE_PORT

pytestmark = pytest.mark.multinode
log = logging.getLogger(__name__)

UPSCALER_MAX = 3
AUTOSCALING = {
    "Upscaler": {
        "min_replicas": 1,
        "max_replicas": UPSCALER_MAX,
        "target_ongoing_requests": 2,
        "upscale_delay_s": 1,
        "downscale_delay_s": 4,
        "look_back_period_s": 2,
        "metrics_interval_s": 0.5,
    },
    # One of each on two shared cores: the placement is what this test is about, not their count.
    "Ingress": {"min_replicas": 1, "max_replicas": 1},
    "Storage": {"min_replicas": 1, "max_replicas": 1},
}
# Once every replica runs, the load stays on until each has served an upload, for at most this long. A
# new replica gets work once the Ingress's router has its queue length; on a busy CI host that took
# longer than the 20 s this test once waited (0 and 0 uploads on the new replicas, 658 on the first).
SERVE_AFTER_SCALE_S = 90


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_server("cluster-test") as server:
        yield server


@pytest.fixture(scope="module")
def cluster(s3: S3Server) -> Iterator[tuple[Cluster, str]]:
    port = SERVE_PORT
    nodes = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "resources": {"cpu_pool": 1000}},  # with the dashboard: state API
    )
    for _ in range(2):
        nodes.add_node(num_cpus=6, num_gpus=2)
    nodes.wait_for_nodes()
    ray.init(address=nodes.address, logging_level="WARNING", log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    settings = {"device": "cpu", "s3_bucket": s3.bucket, "s3_endpoint_url": s3.endpoint, "s3_addressing_style": "path"}
    try:
        deploy(cluster_config(port, settings, AUTOSCALING))
        yield nodes, f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()
        nodes.shutdown()


def serve_logs(cluster: tuple[Cluster, str]) -> Path:
    """Where every node of this one-machine cluster writes its Serve logs (under each session's folder)."""
    return Path(cluster[0].head_node.get_session_dir_path()).parent


def every_replica_served(logs: Path) -> bool:
    served = served_per_replica(logs)
    return all(served[replica] > 0 for replica in replica_nodes("Upscaler"))


@pytest.fixture(scope="module")
def load_step(cluster: tuple[Cluster, str]) -> dict[str, Any]:
    """A load step until the upscaler runs at its maximum, then on until every replica served (at most
    SERVE_AFTER_SCALE_S); what was seen."""
    _, url = cluster
    load = LoadStep(url)
    load.start()
    try:
        try:
            wait_for(lambda: running_replicas("Upscaler") == UPSCALER_MAX, 240, f"{UPSCALER_MAX} upscaler replicas")
        except AssertionError as exc:  # say what the load met, not only that the scale-up never came
            answers = Counter((status, body.get("error")) for status, body in load.results)
            raise AssertionError(f"{exc}; the load's answers: {dict(answers)}") from None
        at_peak = replica_nodes("Upscaler")
        deadline = time.monotonic() + SERVE_AFTER_SCALE_S
        while not every_replica_served(serve_logs(cluster)) and time.monotonic() < deadline:
            time.sleep(1)
        at_end = replica_nodes("Upscaler")
    finally:
        load.stop()
    return {"at_peak": at_peak, "at_end": at_end, "results": load.results}


def head_node_id(cluster: tuple[Cluster, str]) -> str:
    return str(cluster[0].head_node.node_id)


def test_the_upscaler_spreads_over_both_gpu_nodes(cluster: tuple[Cluster, str], load_step: dict[str, Any]) -> None:
    nodes = set(load_step["at_peak"].values())
    assert len(load_step["at_peak"]) == UPSCALER_MAX and len(nodes) == 2
    assert head_node_id(cluster) not in nodes


def test_every_running_upscaler_replica_serves(cluster: tuple[Cluster, str], load_step: dict[str, Any]) -> None:
    logs = serve_logs(cluster)
    counts = served_per_replica(logs)
    running = set(load_step["at_end"])
    log.info("uploads served per upscaler replica: %s (running at the end: %s)", dict(counts), sorted(running))
    assert running and all(counts[replica] > 0 for replica in running), (
        f"upscale calls per replica by outcome: {calls_per_replica(logs)}; the Ingress's router: {router_view(logs)}"
    )


def test_every_upload_under_load_is_answered_correctly(load_step: dict[str, Any]) -> None:
    results = load_step["results"]
    assert len(results) >= 20
    failed = [(status, body) for status, body in results if status != 200]
    assert not failed, failed[:3]
    for _, body in results:
        result = body["result"]
        assert (result["folder"], result["output_width"], result["output_height"]) == ("upscaled", 384, 384)


def test_ingress_and_storage_stay_on_the_cpu_node(cluster: tuple[Cluster, str], load_step: dict[str, Any]) -> None:
    for deployment in ("Ingress", "Storage"):
        placed = set(replica_nodes(deployment).values())
        assert placed == {head_node_id(cluster)}, deployment


def test_the_upscaler_shrinks_back_after_the_load(load_step: dict[str, Any]) -> None:
    wait_for(lambda: running_replicas("Upscaler") == 1 and len(replica_nodes("Upscaler")) == 1, 120, "one replica")
    assert serve.status().applications[APP].status == "RUNNING"
