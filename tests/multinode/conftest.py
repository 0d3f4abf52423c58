"""The multi-node tier: several Ray nodes on this machine, each test module with a cluster of its own.

These tests start Ray clusters with fixed-role nodes and Ray's fake autoscaling provider, which runs
``ray stop --force`` (it kills every Ray process it can see). They run only under ``scripts/isolated``
(own PID, network and mount namespaces: nothing outside is visible or reachable, /tmp/ray is private):
``scripts/isolated .venv/bin/python -m pytest -m multinode tests/multinode`` (scripts/test does it).
"""

from __future__ import annotations

import os

import pytest

from tests.isolation import isolated

# The config's own port. The network namespace is private, so a fixed port collides with nothing; a port
# picked with bind(0) would, in a fresh namespace, be handed out again to the next Ray process that asks.
SERVE_PORT = 8000
# Replicas report their load every 0.5 s instead of 10 s, so a load step is seen in seconds. Read by Serve
# when each Ray process starts: set before any cluster is.
# A router sends nothing to a replica until one of its queue-length probes is answered within the
# deadline (0.1 s by default; verified: at 0.5 ms the proxy routed nothing, 2947 probes missed). On a
# busy 2-core CI host an idle new replica may answer later than 0.1 s, and then it gets no work: allow
# what a loaded machine needs. The same for a proxy's readiness check (5 s by default; three misses and
# the controller kills the proxy, which failed serve.start here with five busy loops on the two cores).
FAST_AUTOSCALING = {
    "RAY_SERVE_REPLICA_AUTOSCALING_METRIC_PUSH_INTERVAL_S": "0.5",
    "RAY_SERVE_HANDLE_AUTOSCALING_METRIC_PUSH_INTERVAL_S": "0.5",
    "RAY_SERVE_QUEUE_LENGTH_RESPONSE_DEADLINE_S": "0.5",
    "RAY_SERVE_MAX_QUEUE_LENGTH_RESPONSE_DEADLINE_S": "2.0",
    "RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "30",
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
}


@pytest.fixture(scope="session", autouse=True)
def isolation() -> None:
    if not isolated():
        pytest.fail(
            "the multinode tier stops every Ray it can see: run it as "
            "`scripts/isolated .venv/bin/python -m pytest -m multinode tests/multinode`"
        )
    os.environ.update(FAST_AUTOSCALING)
