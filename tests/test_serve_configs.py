"""Every shipped Serve config is valid for Ray 2.60's schema and names only real deployments."""

from pathlib import Path

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from serve_app.__main__ import render_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [ROOT / "serve_config.yaml", *sorted((ROOT / "configs").glob("serve_config.*.yaml"))]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_is_valid_for_serve(path: Path) -> None:
    schema = ServeDeploySchema.model_validate(yaml.safe_load(path.read_text()))
    (app,) = schema.applications
    assert app.import_path == "serve_app.app:build_app"
    # EmbeddedBroker is left out: it is in the graph only when JOBS_BROKER_URL is unset, and Serve refuses
    # settings for a deployment the graph lacks.
    assert {d.name for d in app.deployments} == {"Ingress", "Upscaler", "Storage", "JobsConsumer"}
    upscaler = next(d for d in app.deployments if d.name == "Upscaler")
    assert set(upscaler.user_config) == {"max_batch_pixels", "batch_wait_timeout_s", "tile_size", "tile_layout"}
    # Every thread on the main heap, where large blocks are kept (models.engine.threads_share_one_heap).
    assert app.runtime_env["env_vars"]["MALLOC_ARENA_MAX"] == "1"


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
