"""compose.yaml runs the product on one host: valid for the compose spec, the app stores into the
S3-compatible server's bucket and uses Redis, which requires a password every Redis URL carries, the
operator's API keys, webhook secret and rate limit reach the app, .env.example documents every variable
the file reads, the S3 server's command really creates that bucket, and the monitoring profile mounts
files that exist."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
import yaml

from bench.s3servers import free_ports, stop, weed_binary, weed_data_dir
from configs.settings import Settings
from serve_app.__main__ import shutdown_wait_s

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "compose.yaml"
VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")
# What an operator's .env holds: compose refuses to start without these (``${VAR:?message}``).
OPERATOR_ENV = {
    "UPSCALER_S3_ACCESS_KEY": "key",
    "UPSCALER_S3_SECRET_KEY": "secret",
    "GRAFANA_ADMIN_PASSWORD": "pw",
    "REDIS_PASSWORD": "0123456789abcdef",
}
ENV_EXAMPLE = ROOT / ".env.example"
REDIS_URL = re.compile(r"rediss?://[^\s\"',}]+")


class MissingVariableError(Exception):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}`` (unset or empty is missing)."""

    def value(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if env.get(name):
            return env[name]
        if kind == "?":
            raise MissingVariableError(f"{name}: {rest}")
        return rest if kind == "-" else ""

    return VARIABLE.sub(value, text)


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The file as compose reads it with ``env`` (an operator's .env by default) and nothing else set."""
    loaded: dict[str, Any] = yaml.safe_load(interpolate(COMPOSE.read_text(), OPERATOR_ENV if env is None else env))
    return loaded


def service(name: str) -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"][name]
    return found


def environment(name: str) -> dict[str, str]:
    return {key: str(value) for key, value in service(name).get("environment", {}).items()}


def app_settings(env: dict[str, str]) -> Settings:
    """The app's settings from the environment compose gives its container."""
    return Settings(**{k.lower(): v for k, v in env.items() if k.lower() in Settings.model_fields})


def weed_flags() -> dict[str, str]:
    return dict(arg.lstrip("-").split("=", 1) for arg in service("s3")["command"][1:])


def test_compose_file_is_valid_for_the_compose_spec() -> None:
    checker = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_app_stores_into_the_bucket_the_s3_service_creates() -> None:
    env = environment("upscaler")
    settings = Settings(**{k.lower(): v for k, v in env.items() if k.lower() in Settings.model_fields})
    assert settings.storage_backend == "s3" and settings.s3_bucket == weed_flags()["bucket"]
    endpoint = urlsplit(settings.s3_endpoint_url or "")
    assert (endpoint.hostname, str(endpoint.port)) == ("s3", weed_flags()["s3.port"])
    assert env["AWS_ACCESS_KEY_ID"] == environment("s3")["AWS_ACCESS_KEY_ID"]
    assert env["AWS_SECRET_ACCESS_KEY"] == environment("s3")["AWS_SECRET_ACCESS_KEY"]
    assert set(service("upscaler")["depends_on"]) == {"s3", "redis"}


def test_the_jobs_broker_is_the_redis_service() -> None:
    broker = urlsplit(environment("upscaler")["JOBS_BROKER_URL"])
    assert (broker.scheme, broker.hostname, broker.port) == ("redis", "redis", 6379)
    assert "--appendonly" in service("redis")["command"]


def test_redis_requires_the_operators_password_and_every_redis_url_carries_it() -> None:
    command = service("redis")["command"]
    assert command[command.index("--requirepass") + 1] == OPERATOR_ENV["REDIS_PASSWORD"]
    urls = REDIS_URL.findall(interpolate(COMPOSE.read_text(), OPERATOR_ENV))
    assert urls and all(urlsplit(u).password == OPERATOR_ENV["REDIS_PASSWORD"] for u in urls), urls
    assert environment("redis")["REDISCLI_AUTH"] == OPERATOR_ENV["REDIS_PASSWORD"]  # the health check's client


def test_the_app_receives_the_operators_api_keys_webhook_secret_and_rate_limit() -> None:
    operator = {"API_KEYS": "k" * 16 + ",k2" + "x" * 16, "WEBHOOK_SECRET": "w" * 24, "RATE_LIMIT": "20/minute"}
    env = {k: str(v) for k, v in compose({**OPERATOR_ENV, **operator})["services"]["upscaler"]["environment"].items()}
    assert {k: env[k] for k in operator} == operator
    settings = app_settings(env)
    assert settings.api_key_list == operator["API_KEYS"].split(",") and settings.rate_limit == "20/minute"
    assert settings.webhook_secret and settings.webhook_secret.get_secret_value() == operator["WEBHOOK_SECRET"]
    unset = app_settings(environment("upscaler"))
    assert (unset.api_keys, unset.webhook_secret, unset.rate_limit) == (None, None, None)  # empty is off


def test_env_example_documents_every_variable_compose_reads_and_no_other() -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    listed = {line.split("=", 1)[0] for line in lines if re.match(r"^[A-Z0-9_]+=", line)}
    code = "\n".join(line for line in COMPOSE.read_text().splitlines() if not line.lstrip().startswith("#"))
    assert listed == {name for name, _, _ in VARIABLE.findall(code)}
    assert "/.env" in (ROOT / ".gitignore").read_text().splitlines()  # the filled-in copy is never committed


def test_the_redis_service_fsyncs_every_write_like_the_embedded_broker() -> None:
    command = service("redis")["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "always"


def test_the_app_runs_the_image_the_cluster_runs() -> None:
    rayservice = yaml.safe_load((ROOT / "configs" / "kuberay" / "rayservice.yaml").read_text())
    head = rayservice["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert service("upscaler")["image"] == head["image"]
    assert service("upscaler")["build"] == "."


def mounts(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """A service's (source, target) mounts, in compose's short (``src:dst[:ro]``) or long syntax."""
    found = []
    for volume in spec.get("volumes", []):
        if isinstance(volume, dict):
            found.append((str(volume["source"]), str(volume["target"])))
        else:
            source, target = volume.split(":")[:2]
            found.append((source, target))
    return found


def test_every_mounted_file_is_in_the_repository() -> None:
    for name, spec in compose()["services"].items():
        for source, _ in mounts(spec):
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


def test_grafana_reads_the_prometheus_service_and_our_dashboard() -> None:
    provisioning = ROOT / "configs" / "monitoring" / "grafana" / "provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())["datasources"]
    assert (source["type"], source["url"]) == ("prometheus", "http://prometheus:9090")
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "upscaler.yaml").read_text())["providers"]
    grafana_mounts = [target for _, target in mounts(service("grafana"))]
    assert any(m.startswith(provider["options"]["path"] + "/") for m in grafana_mounts)


def test_prometheus_reads_rays_temp_folder_at_the_path_the_app_writes_it_and_nothing_else_of_the_volume() -> None:
    """The discovery file is a link into Ray's session folder by absolute path: only the same path resolves."""
    from tests.test_container_image import image_env

    ray_temp = f"{image_env()['RAY_TMPDIR']}/ray"
    (mount,) = [v for v in service("prometheus")["volumes"] if isinstance(v, dict) and v["source"] == "upscaler-data"]
    assert (mount["target"], mount["read_only"], mount["volume"]["subpath"]) == (ray_temp, True, "ray")
    assert ("upscaler-data", "/data") in mounts(service("upscaler")) and ray_temp.startswith("/data/")
    files = [f for job in yaml.safe_load((ROOT / "configs/monitoring/prometheus.yml").read_text())["scrape_configs"]
             for sd in job.get("file_sd_configs", []) for f in sd["files"]]  # fmt: skip
    assert any(f.startswith(f"{ray_temp}/prom_metrics_service_discovery") for f in files)


def test_every_port_is_published_on_this_host_only_unless_the_operator_widens_it_with_keys() -> None:
    published = {name: spec.get("ports", []) for name, spec in compose()["services"].items()}
    assert all(port.startswith("127.0.0.1:") for ports in published.values() for port in ports), published
    widened = compose({**OPERATOR_ENV, "VCS_BIND": "0.0.0.0", "API_KEYS": "k1,k2"})["services"]["upscaler"]
    assert widened["ports"][0] == "0.0.0.0:8000:8000" and widened["environment"]["API_KEYS"] == "k1,k2"
    assert "VCS_BIND" in COMPOSE.read_text().split("services:")[0]  # the header says: with API_KEYS


@pytest.mark.parametrize("variable", sorted(OPERATOR_ENV))
def test_credentials_come_from_the_operator_with_no_default(variable: str) -> None:
    with pytest.raises(MissingVariableError, match=variable):
        compose({k: v for k, v in OPERATOR_ENV.items() if k != variable})
    assert environment("upscaler")["AWS_SECRET_ACCESS_KEY"] == "secret"
    assert environment("grafana")["GF_SECURITY_ADMIN_PASSWORD"] == "pw"


def test_docker_waits_for_the_replicas_to_finish_what_they_hold_before_killing() -> None:
    grace = service("upscaler")["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) >= shutdown_wait_s(
        yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    )


@pytest.mark.integration
def test_the_s3_service_command_creates_the_bucket() -> None:
    """The s3 service's own arguments, run by the same SeaweedFS release, with loopback ports."""
    with weed_data_dir() as data_dir:
        _run_the_s3_service_command(data_dir)


def _run_the_s3_service_command(data_dir: Path) -> None:
    s3, master, volume, filer, admin = free_ports(5, grpc_offset=10000)
    local = {"ip": "127.0.0.1", "ip.bind": "127.0.0.1", "dir": str(data_dir), "s3.port": str(s3)}
    local |= {"master.port": str(master), "volume.port": str(volume), "filer.port": str(filer)}
    local |= {"admin.port": str(admin)}
    flags = weed_flags() | local
    env = environment("s3")
    process = subprocess.Popen(
        [weed_binary(), "mini", *(f"-{k}={v}" for k, v in flags.items())],
        env={"PATH": "/usr/bin:/bin", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{s3}",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client.put_object(Bucket=weed_flags()["bucket"], Key="probe.txt", Body=b"ok")
                break
            except Exception:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.3)
        assert client.get_object(Bucket=weed_flags()["bucket"], Key="probe.txt")["Body"].read() == b"ok"
    finally:
        stop(process)
