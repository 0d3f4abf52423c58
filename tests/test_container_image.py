"""The container image without a container daemon: the Dockerfile lints clean, pins what the cluster
needs, its build context holds what the service needs, and its install steps, run in a fresh venv,
give an app that starts through the image's entry point, answers, and leaves nothing behind on SIGTERM.
"""

from __future__ import annotations

import fnmatch
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from PIL import Image

from bench.s3servers import free_ports
from tests.launcher import launched_until_healthy, marked_processes, parent, processes

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).with_name("hadolint")
STOP_TIMEOUT_S = 45


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n(\s*#.*\n)*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def build_args() -> dict[str, str]:
    found = {}
    for name, rest in instructions():
        if name == "ARG" and "=" in rest:
            key, value = rest.split("=", 1)
            found[key] = value.strip('"')
    return found


def run_steps() -> list[str]:
    return [rest for name, rest in instructions() if name == "RUN"]


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _matches(pattern: str, path: str) -> bool:
    """Docker's rule: a pattern excludes a path when it matches the path or one of its parent folders;
    ``*`` stays within one folder, ``**`` crosses any number."""
    regex = re.escape(pattern.rstrip("/")).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
    parts = path.split("/")
    return any(re.fullmatch(regex, "/".join(parts[:i])) for i in range(1, len(parts) + 1))


def build_context() -> list[str]:
    """The files ``docker build .`` would send: tracked and untracked files, filtered by .dockerignore."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True
    )
    kept = []
    for path in listed.stdout.splitlines():
        included = True
        for pattern in dockerignore_patterns():
            negated = pattern.startswith("!")
            if _matches(pattern.removeprefix("!"), path):
                included = negated
        if included and (ROOT / path).is_file():
            kept.append(path)
    return kept


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run([str(HADOLINT), "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_the_image_pins_the_ray_the_project_and_the_cluster_use() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (ray_pin,) = [d for d in dependencies if d.startswith("ray[")]
    rayservice = yaml.safe_load((ROOT / "configs" / "kuberay" / "rayservice.yaml").read_text())
    version = build_args()["RAY_VERSION"]
    assert ray_pin == f"ray[serve]=={version}" and rayservice["spec"]["rayClusterConfig"]["rayVersion"] == version
    assert not re.search(r":latest\b", DOCKERFILE.read_text())


def test_the_image_runs_the_launcher_as_a_user_with_a_health_check() -> None:
    steps = dict(instructions())
    assert steps["ENTRYPOINT"] == '["tini", "--", "python", "-m", "serve_app"]' and steps["CMD"] == '["serve"]'
    assert steps["USER"].split(":")[0] not in {"0", "root"}
    assert "/api/health" in steps["HEALTHCHECK"]
    assert "MALLOC_ARENA_MAX=1" in steps["ENV"]


def test_every_ray_process_in_the_image_starts_with_the_services_ray_settings() -> None:
    from configs.ray_env import RAY_ENV

    env = dict(instructions())["ENV"].split()
    assert RAY_ENV and all(f"{name}={value}" in env for name, value in RAY_ENV.items())


def test_the_build_context_is_the_code_weights_and_configs_only() -> None:
    context = build_context()
    assert {"serve_config.yaml", "pyproject.toml", "serve_app/app.py", "configs/kuberay/rayservice.yaml"} <= set(
        context
    )
    assert any(fnmatch.fnmatch(p, "models/weights/*.safetensors") for p in context)
    assert not [p for p in context if p.split("/")[0] in {"tests", "bench", "docs", "data", ".venv", "runs"}]
    assert not [p for p in context if "__pycache__" in p or p.endswith(".env")]


@pytest.fixture(scope="module")
def installed_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Dockerfile's install steps in a fresh venv over a copy of the build context. Only the
    dependencies' wheels are not unpacked again: the venv sees the dev venv's site-packages through a
    .pth file, so ``pip install -r`` finds every pinned requirement satisfied (the resolution still
    runs); the project step runs as written."""
    app = tmp_path_factory.mktemp("image") / "app"
    for path in build_context():
        (app / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, app / path)
    venv = app.parent / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "dev-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {**os.environ, "VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    env |= {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "TORCH_INDEX_URL": ""}
    env.pop("PYTHONPATH", None)
    script = "\n".join(step.replace('python -m venv "$VIRTUAL_ENV"', "true") for step in run_steps()[1:])
    script = script.replace("pip install", "python -m pip install").replace("$RAY_VERSION", build_args()["RAY_VERSION"])
    result = subprocess.run(["bash", "-o", "pipefail", "-ec", script], cwd=app, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return app


@pytest.fixture(scope="module")
def launched(
    installed_app: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[subprocess.Popen[bytes], str, str]]:
    """``python -m serve_app serve`` (the image's entry point) from the fresh venv, answering."""
    (port,) = free_ports(1)
    marker = uuid.uuid4().hex
    venv_python = installed_app.parent / "venv" / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "PYTHONPATH"))}
    env |= {"PORT": str(port), "STORAGE_DIR": str(tmp_path_factory.mktemp("storage")), "RAY_AUTH_MODE": "disabled"}
    env |= {"MALLOC_ARENA_MAX": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    command = [str(venv_python), "-m", "serve_app", "serve"]
    log = installed_app.parent / "launcher.log"
    with launched_until_healthy(command, installed_app, env, port, marker, log) as (process, url):
        yield process, url, marker


@pytest.mark.integration
def test_the_installed_app_starts_as_serve_run_and_answers(launched: tuple[subprocess.Popen[bytes], str, str]) -> None:
    process, url, _ = launched
    assert process.poll() is None, (Path(process.args[0]).parents[2] / "launcher.log").read_text()[-3000:]
    children = [cmdline for pid, cmdline in processes() if parent(pid) == process.pid]
    assert any(b"serve_app.serve_cli" in c and b"\0run\0" in c for c in children), children  # `serve run`
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), (200, 30, 90)).save(buffer, "PNG")
    response = httpx.post(f"{url}/api/images/upload", files={"image": ("red.png", buffer.getvalue())}, timeout=120)
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert (result["folder"], result["output_width"], result["output_height"]) == ("upscaled", 96, 64)


@pytest.mark.integration
def test_sigterm_stops_everything_the_launcher_started(launched: tuple[subprocess.Popen[bytes], str, str]) -> None:
    process, _, marker = launched
    assert len(marked_processes(marker)) > 5  # serve run, GCS, raylet, controller, proxy, replicas, …
    process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while marked_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes()[:80] for pid in marked_processes(marker)}
    assert not left, f"still running {STOP_TIMEOUT_S} s after SIGTERM: {left}"
    assert process.wait(timeout=1) == 0  # `serve run` shut down gracefully, and its status is the launcher's
