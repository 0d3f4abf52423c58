"""`serve run` as the launcher runs it: on SIGINT it waits for the uploads the ingress holds before Serve
deletes the deployments they need, and gives Serve the config's grace instead of Ray's 30 s."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import ray
from ray import serve
from ray.serve import api, scripts
from ray.serve._private.client import ServeControllerClient

from serve_app.serve_cli import dashboard_on, install, starts_a_local_ray, wait_until_idle


def test_ray_serve_run_stops_through_serve_shutdown_which_waits_only_its_clients_default() -> None:
    """What the launcher relies on in Ray 2.60: ``serve run`` calls ``serve.shutdown()`` on Ctrl-C, and
    that calls the client's ``shutdown()`` with no timeout of its own (30 s by default)."""
    assert "serve.shutdown()" in inspect.getsource(scripts.run.callback)  # type: ignore[arg-type]
    assert "client.shutdown()" in inspect.getsource(api.shutdown)
    assert ServeControllerClient.shutdown.__defaults__ == (30.0,)


def test_shutdown_waits_until_the_ingress_holds_nothing_then_deletes_with_the_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    held, deleted = [2, 1, 0], []
    monkeypatch.setattr(serve, "shutdown", lambda: deleted.append(list(held)))
    monkeypatch.setattr(ServeControllerClient.shutdown, "__defaults__", ServeControllerClient.shutdown.__defaults__)
    install(270.0, held=lambda: held.pop(0), poll_s=0.0)
    serve.shutdown()
    assert deleted == [[]]  # asked until the ingress held nothing, and only then deleted
    assert ServeControllerClient.shutdown.__defaults__ == (270.0,)


def test_past_the_grace_it_stops_anyway_and_a_failed_count_is_asked_again() -> None:
    assert not wait_until_idle(lambda: 1, grace_s=0.0)
    answers: list[int | Exception] = [RuntimeError("a replica died meanwhile"), 0]

    def held() -> int:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_until_idle(held, grace_s=60.0, poll_s=0.0) and not answers


def test_serve_run_starts_its_ray_with_the_dashboard_on_ray_s_default_host() -> None:
    """What ``dashboard_on`` is for in Ray 2.60: ``serve run`` passes no ``dashboard_host`` (so 127.0.0.1)."""
    source = inspect.getsource(scripts.run.callback)  # type: ignore[arg-type]
    assert "ray.init(" in source and "dashboard_host" not in source
    assert inspect.signature(ray.init).parameters["dashboard_host"].default == "127.0.0.1"


def test_the_local_ray_serve_run_starts_listens_for_the_dashboard_on_the_given_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
    dashboard_on("0.0.0.0")
    ray.init(address="local", namespace="serve", runtime_env={})  # as `serve run` calls it
    assert calls == [{"address": "local", "namespace": "serve", "runtime_env": {}, "dashboard_host": "0.0.0.0"}]


def test_only_a_ray_started_here_gets_a_dashboard_host() -> None:
    assert starts_a_local_ray(["run", "c.yaml", "--app-dir", "/app", "--address", "local"])
    assert starts_a_local_ray(["run", "c.yaml", "--address=local"])
    assert not starts_a_local_ray(["run", "c.yaml", "--address", "ray://head:10001"])
    assert not starts_a_local_ray(["run", "c.yaml", "--address"])
