"""Every shipped Serve config (and the RayService's serveConfigV2) is valid for Ray 2.60 key by key,
bounds its queues, fits the machine it is for, and names only real deployments with valid arguments.

Ray's schema classes ignore unknown keys (``target_num_ongoing_requests_per_replica`` or
``proxy_locaton`` pass ``ServeDeploySchema``), so each key is looked up in the ``model_fields`` of the
class that reads it; the parts Ray types as a free dict are checked by the models that read them here:
``args`` by ``AppArgs``, the Upscaler's ``user_config`` by ``UpscalerConfig``.
"""

import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from ray.serve.config import AutoscalingConfig
from ray.serve.schema import DeploymentSchema, RayActorOptionsSchema, ServeDeploySchema

from configs.settings import Settings
from deployments.broker.deployment import EmbeddedBroker
from deployments.upscaler.tunables import UpscalerConfig
from serve_app.__main__ import render_config, short_graceful_shutdowns
from serve_app.app import AppArgs

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [ROOT / "serve_config.yaml", *sorted((ROOT / "configs").glob("serve_config.*.yaml"))]
RAYSERVICE = ROOT / "configs" / "kuberay" / "rayservice.yaml"
# Fields Ray types as a free dict (or a dict-or-model union) that a schema class reads after all.
READ_AS = {
    (DeploymentSchema, "autoscaling_config"): AutoscalingConfig,
    (DeploymentSchema, "ray_actor_options"): RayActorOptionsSchema,
}


def documents() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in CONFIGS:
        yield path.name, yaml.safe_load(path.read_text())
    yield "rayservice serveConfigV2", yaml.safe_load(yaml.safe_load(RAYSERVICE.read_text())["spec"]["serveConfigV2"])


DOCUMENTS = dict(documents())


def model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model a field's annotation holds, through Optional, Union and List."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in {typing.Union, types.UnionType, list, typing.List}:  # noqa: UP006
        for arg in typing.get_args(annotation):
            if found := model_in(arg):
                return found
    return None


def unknown_keys(data: Any, model: type[BaseModel], path: str) -> Iterator[str]:
    """Every key of ``data`` (recursively) that ``model`` has no field for."""
    if isinstance(data, list):
        for i, item in enumerate(data):
            yield from unknown_keys(item, model, f"{path}[{i}]")
        return
    if not isinstance(data, dict):
        return
    names = {alias or name: name for name, f in model.model_fields.items() for alias in (f.alias, None)}
    for key, value in data.items():
        if key not in names:
            yield f"{path}.{key}"
            continue
        field = names[key]
        nested = READ_AS.get((model, field)) or model_in(model.model_fields[field].annotation)
        if nested is not None:
            yield from unknown_keys(value, nested, f"{path}.{key}")


def deployments(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (app,) = document["applications"]
    return {d["name"]: d for d in app["deployments"]}


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_key_is_one_ray_reads(name: str) -> None:
    document = DOCUMENTS[name]
    ServeDeploySchema.model_validate(document)
    assert not list(unknown_keys(document, ServeDeploySchema, name))


@pytest.mark.parametrize(
    ("path", "typo"),
    [
        (("proxy_locaton",), "EveryNode"),
        (("applications", 0, "deployments", 0, "autoscaling_config", "target_num_ongoing_requests_per_replica"), 4),
        (("applications", 0, "deployments", 0, "max_ongoing_request"), 4),
        (("applications", 0, "deployments", 0, "ray_actor_options", "num_cpu"), 1),
        (("http_options", "request_timeout"), 30),
    ],
)
def test_a_typo_in_a_config_is_found(path: tuple[Any, ...], typo: Any) -> None:
    document = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    node = document
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = typo
    assert list(unknown_keys(document, ServeDeploySchema, "config")) == [f"config{_dotted(path)}"]


def _dotted(path: tuple[Any, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


@pytest.mark.parametrize("name", DOCUMENTS)
def test_args_and_user_config_are_valid_for_the_models_that_read_them(name: str) -> None:
    (app,) = DOCUMENTS[name]["applications"]
    assert app["import_path"] == "serve_app.app:build_app"
    AppArgs.model_validate(app["args"])
    found = deployments(DOCUMENTS[name])
    assert {"Ingress", "Upscaler", "Storage"} <= set(found)
    UpscalerConfig.model_validate(found["Upscaler"]["user_config"])
    # Every thread on the main heap, where large blocks are kept (models.engine.threads_share_one_heap).
    assert app["runtime_env"]["env_vars"]["MALLOC_ARENA_MAX"] == "1"


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_deployment_bounds_its_queue_and_http_overload_says_when_to_retry(name: str) -> None:
    found = deployments(DOCUMENTS[name])
    for deployment in found.values():
        assert deployment["max_queued_requests"] > 0, deployment["name"]
        assert deployment["ray_actor_options"]["num_cpus"] > 0, deployment["name"]
    assert found["Ingress"]["backpressure_config"]["status_code"] == 429
    assert found["Ingress"]["backpressure_config"]["retry_after_s"] > 0


@pytest.mark.parametrize("name", DOCUMENTS)
def test_stopping_a_replica_waits_for_the_longest_upload_it_may_hold(name: str) -> None:
    """Serve stops a replica (shutdown, redeploy, scale-down) after graceful_shutdown_timeout_s (20 s by
    default) even with requests in flight: every deployment waits out UPSCALE_TIMEOUT_S and the store."""
    upscale_timeout_s = Settings.model_fields["upscale_timeout_s"].default
    assert set(deployments(DOCUMENTS[name])) >= {"Ingress", "Upscaler", "Storage"}
    assert short_graceful_shutdowns(DOCUMENTS[name], upscale_timeout_s) == []


def peak(document: dict[str, Any], resource: str, only: str | None = None) -> float:
    """What every deployment at max_replicas asks for, of ``resource`` (num_cpus / num_gpus), optionally
    only those that need the custom resource ``only``."""
    total = 0.0
    for d in deployments(document).values():
        options = d["ray_actor_options"]
        if only is None or only in options.get("resources", {}):
            replicas = (
                d["autoscaling_config"]["max_replicas"] if "autoscaling_config" in d else d.get("num_replicas", 1)
            )
            total += replicas * options.get(resource, 0)
    return total


def test_the_laptop_config_fits_two_cpus_at_full_scale() -> None:
    embedded_broker = EmbeddedBroker.ray_actor_options["num_cpus"]  # code defaults, not in the config
    assert peak(DOCUMENTS["serve_config.yaml"], "num_cpus") + embedded_broker <= 2


def test_the_gpu_config_fits_one_gpu_and_six_cpus() -> None:
    document = DOCUMENTS["serve_config.gpu.yaml"]
    assert peak(document, "num_gpus") <= 1 and peak(document, "num_cpus") <= 6


def test_the_cluster_config_keeps_cpu_replicas_off_gpu_nodes_and_fits_its_nodes() -> None:
    found = deployments(DOCUMENTS["serve_config.cluster.yaml"])
    upscaler = found["Upscaler"]["ray_actor_options"]
    assert upscaler["num_gpus"] == 1 and upscaler["num_cpus"] <= 4 and "cpu_pool" not in upscaler.get("resources", {})
    for name in ("Ingress", "Storage"):
        assert found[name]["ray_actor_options"]["resources"]["cpu_pool"] > 0


def test_port_comes_from_the_settings() -> None:
    rendered = yaml.safe_load(render_config(ROOT / "serve_config.yaml", 9123))
    assert rendered["http_options"]["port"] == 9123


class _Captured(Exception):
    pass


def test_serve_hands_the_config_args_to_the_typed_builder(monkeypatch: pytest.MonkeyPatch) -> None:
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary

    import serve_app.app as app_module

    def capture(**overrides: object) -> None:
        raise _Captured(overrides)

    monkeypatch.setattr(app_module, "load_settings", capture)
    with pytest.raises(_Captured) as caught:
        call_user_app_builder_with_args_if_necessary(app_module.build_app, {"settings": {"upscale_scale": 4}})
    assert caught.value.args == ({"upscale_scale": 4},)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"settings": {"quality_treshold": 0.9}}, "quality_treshold: not a setting; did you mean quality_threshold"),
        ({"setings": {}}, "setings"),
    ],
)
def test_a_typo_in_the_config_args_fails_the_deploy(args: dict[str, object], message: str) -> None:
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary

    import serve_app.app as app_module

    with pytest.raises(Exception, match=message):
        call_user_app_builder_with_args_if_necessary(app_module.build_app, args)
