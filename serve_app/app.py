"""The composition root: typed arguments → the bound application graph. The only ``.bind()``.

``serve_config.yaml`` points at ``serve_app.app:build_app``; its ``args:`` are validated as
``AppArgs`` (Serve reads the parameter's annotation at run time, so this module does not use
postponed annotations). Settings come from the environment and ``.env``; ``args.settings`` may override them.
"""

import logging
from pathlib import Path
from typing import Any

import ray
from pydantic import BaseModel, ConfigDict, Field
from ray.serve import Application

from configs.model_registry import load_registry
from configs.settings import Settings, SettingsOverrides, load_settings
from deployments.broker.deployment import EmbeddedBroker
from deployments.ingress.api_keys import KeyRing
from deployments.ingress.deployment import Ingress
from deployments.jobs.deployment import consumer_deployment
from deployments.storage.deployment import Storage
from deployments.upscaler.deployment import Upscaler

log = logging.getLogger("ray.serve")

WEB_DIR = Path(__file__).resolve().parent / "web"  # the web UI, served by the ingress at /


class AppArgs(BaseModel):
    """A Serve config's ``args:``. Unknown keys fail the deploy, here and inside ``settings``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    settings: SettingsOverrides = Field(
        default_factory=SettingsOverrides, description="overrides of environment settings"
    )


def wants_gpu(settings: Settings) -> bool:
    """DEVICE=cuda, or DEVICE=auto on a cluster that has GPUs: the upscaler then asks Ray for one."""
    if settings.device == "cuda":
        return True
    if settings.device == "auto" and ray.is_initialized():
        gpus: float = ray.cluster_resources().get("GPU", 0)  # type: ignore[no-untyped-call]
        return gpus > 0
    return False


def build_app(args: AppArgs) -> Application:
    settings = load_settings(**args.settings.as_dict())
    # @serve.deployment turns the classes into Deployments; Ray's annotations keep them as classes.
    upscaler_deployment: Any = Upscaler
    if wants_gpu(settings):
        upscaler_deployment = upscaler_deployment.options(ray_actor_options={"num_cpus": 1, "num_gpus": 1})
    log.info(
        "building app: storage=%s scale=%s device=%s jobs broker=%s",
        settings.storage_backend,
        settings.upscale_scale,
        settings.device,
        "embedded" if settings.embedded_broker else "JOBS_BROKER_URL",
    )
    ingress: Any = Ingress
    storage_deployment: Any = Storage
    broker_deployment: Any = EmbeddedBroker
    # API keys reach the ingress only as SHA-256 digests; no deployment gets them in its init args.
    keys = KeyRing.from_keys(settings.api_key_list, settings.api_keys_file)
    settings = without_secrets(settings)
    upscaler = upscaler_deployment.bind(settings, load_registry(settings.model_registry))
    storage = storage_deployment.bind(settings)
    broker = broker_deployment.bind(settings) if settings.embedded_broker else None
    jobs = consumer_deployment(settings).bind(upscaler, storage, settings, broker)
    # embedded_broker: the ingress keeps its rate-limit counters in that broker's Redis (one count per service).
    app: Application = ingress.bind(upscaler, storage, settings, jobs, keys, str(WEB_DIR), broker is not None)
    return app


def without_secrets(settings: Settings) -> Settings:
    return settings.model_copy(update={"api_key": None, "api_keys": None})
