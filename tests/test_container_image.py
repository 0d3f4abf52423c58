"""The container image without a container daemon: the Dockerfile lints clean, pins what the cluster
needs, installs its dependencies from the lock file alone (the CPU build too), keeps everything the
service writes on the /data volume, its build context holds what the service needs, and its install
steps, run in a fresh venv, give an app that starts through the image's entry point as a user who
cannot write the app's folder, answers, serves the Ray dashboard on every interface, and leaves nothing
behind on SIGTERM.
"""

from __future__ import annotations

import fnmatch
import io
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import yaml
from PIL import Image

from bench.s3servers import free_ports
from configs.settings import REPO_ROOT, Settings
from tests.launcher import launched_until_healthy, marked_processes, parent, processes

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).with_name("hadolint")
STOP_TIMEOUT_S = 45
VOLUME = Path("/data")
LOCK = "requirements.lock"
DASHBOARD_PORT = 8265


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
    """Each RUN's shell command, without the RUN's own flags (``--mount=…``)."""
    return [re.sub(r"^(--\S+\s+)+", "", rest) for name, rest in instructions() if name == "RUN"]


def image_env() -> dict[str, str]:
    """The image's ENV (one instruction, ``KEY=VALUE`` pairs)."""
    (env,) = [rest for name, rest in instructions() if name == "ENV"]
    return dict(pair.split("=", 1) for pair in env.split())


def dependency_step() -> str:
    (step,) = [s for s in run_steps() if LOCK in s]
    return step


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
    assert steps["HEALTHCHECK"].endswith('CMD ["python", "-m", "serve_app.probe"]')  # /api/health via the proxy
    assert "MALLOC_ARENA_MAX=1" in steps["ENV"]


def test_every_ray_process_in_the_image_starts_with_the_services_ray_settings() -> None:
    from configs.ray_env import RAY_ENV

    env = dict(instructions())["ENV"].split()
    assert RAY_ENV and all(f"{name}={value}" in env for name, value in RAY_ENV.items())


def test_the_build_context_is_the_code_weights_and_configs_only() -> None:
    context = build_context()
    wanted = {"serve_config.yaml", "pyproject.toml", LOCK, "serve_app/app.py", "configs/kuberay/rayservice.yaml"}
    assert wanted <= set(context)
    assert any(fnmatch.fnmatch(p, "models/weights/*.safetensors") for p in context)
    assert not [p for p in context if p.split("/")[0] in {"tests", "bench", "docs", "data", ".venv", "runs"}]
    assert not [p for p in context if "__pycache__" in p or p.endswith(".env")]


@pytest.fixture(scope="module")
def image_root() -> Iterator[Path]:
    """A folder every user may enter (pytest's own are private to the user running it), removed after."""
    root = Path(tempfile.mkdtemp(prefix="vcs-image-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def installed_app(image_root: Path) -> Path:
    """The Dockerfile's install steps in a fresh venv over a copy of the build context. Only the
    dependencies' wheels are not unpacked again: the venv sees the dev venv's site-packages through a
    .pth file, so ``pip install --require-hashes -r requirements.lock`` finds every locked requirement
    satisfied (the lock is still read and checked); the project step runs as written. Afterwards the
    app's folder is read-only, as /app is to the image's user."""
    app = image_root / "app"
    for path in build_context():
        (app / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, app / path)
    venv = image_root / "venv"
    subprocess.run([base_python(), "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "dev-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {**os.environ, "VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    env |= {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "TORCH_INDEX_URL": ""}
    env.pop("PYTHONPATH", None)
    script = "\n".join(step.replace('python -m venv "$VIRTUAL_ENV"', "true") for step in run_steps()[1:])
    script = script.replace("pip install", "python -m pip install").replace("$RAY_VERSION", build_args()["RAY_VERSION"])
    result = subprocess.run(["bash", "-o", "pipefail", "-ec", script], cwd=app, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    subprocess.run(["chmod", "-R", "a-w", str(app)], check=True)
    return app


def base_python() -> str:
    """A Python of the tests' version that the app's user can run: the tests' own, unless it lives where
    that user cannot read (a pyenv build under /root), then the system's."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, f"/usr/bin/{version}"):
        user = image_user()
        as_user: dict[str, object] = {"user": user[0], "group": user[1], "extra_groups": []} if user else {}
        try:
            if subprocess.run([candidate, "-c", "pass"], cwd="/", capture_output=True, **as_user).returncode == 0:
                return candidate
        except PermissionError:  # the exec itself was refused
            continue
    raise AssertionError(f"no {version} that the user {image_user()} may run")


def image_user() -> tuple[int, int] | None:
    """Who runs the app: as root, ``nobody`` (owning nothing of the app, as the image's user owns nothing
    in /app); otherwise the user running the tests, to whom the app's folder is read-only."""
    if os.geteuid() != 0:
        return None
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid


@pytest.fixture(scope="module")
def data_volume(image_root: Path) -> Path:
    """The /data volume: a folder owned by the app's user, where the image's ENV points every write."""
    data = image_root / "data"
    home = image_root / "home"
    for folder in (data, home):
        folder.mkdir()
        if user := image_user():
            os.chown(folder, *user)
    return data


def env_of_the_image(data: Path, home: Path) -> dict[str, str]:
    """The image's ENV with /data moved to ``data`` (and no venv of its own: the fresh one is used)."""
    moved = {k: re.sub(rf"^{VOLUME}(?=/|$)", str(data), v) for k, v in image_env().items()}
    return {k: v for k, v in moved.items() if k not in {"PATH", "VIRTUAL_ENV"}} | {"HOME": str(home)}


@pytest.fixture(scope="module")
def launched(installed_app: Path, data_volume: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, str]]:
    """``python -m serve_app serve`` (the image's entry point) from the fresh venv, answering: run as a
    user who cannot write the app's folder, in it, with the image's environment and nothing else the
    image does not set (the tests' environment would hide a default that does not work)."""
    (port,) = free_ports(1)
    marker = uuid.uuid4().hex
    venv_python = installed_app.parent / "venv" / "bin" / "python"
    env = env_of_the_image(data_volume, installed_app.parent / "home")
    env |= {"PATH": os.environ["PATH"], "PORT": str(port), "RAY_AUTH_MODE": "disabled"}
    command = [str(venv_python), "-m", "serve_app", "serve"]
    log = installed_app.parent / "launcher.log"
    with launched_until_healthy(command, installed_app, env, port, marker, log, image_user()) as (process, url):
        yield process, url, marker


@pytest.mark.integration
def test_the_image_reaches_healthy_with_its_defaults_and_writes_only_its_volume(
    launched: tuple[subprocess.Popen[bytes], str, str], installed_app: Path, data_volume: Path
) -> None:
    process, url, _ = launched
    log = (installed_app.parent / "launcher.log").read_text()[-3000:]
    assert process.poll() is None and httpx.get(f"{url}/api/health", timeout=10).status_code == 200, log
    # The embedded broker is no part of health (nothing it holds is needed to answer an upload), so its
    # replica may still be starting when the ingress first answers 200: wait for its socket.
    socket = data_volume / "jobs" / "redis.sock"
    deadline = time.monotonic() + 120
    while not socket.is_socket() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert socket.is_socket(), log  # the embedded broker, under JOBS_DIR
    assert (data_volume / "ray" / "session_latest").exists()  # Ray's temp folder, under RAY_TMPDIR


@pytest.mark.integration
def test_the_ray_dashboard_listens_on_every_interface(launched: tuple[subprocess.Popen[bytes], str, str]) -> None:
    _, _, marker = launched
    ours = set(marked_processes(marker))
    listening = {
        (c.laddr.ip, c.laddr.port)
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.pid in ours
    }
    assert ("0.0.0.0", DASHBOARD_PORT) in listening, sorted(listening)
    assert httpx.get(f"http://127.0.0.1:{DASHBOARD_PORT}/api/version", timeout=10).status_code == 200


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


def written_settings() -> dict[str, Path]:
    """Every path setting whose default lies in the app's folder and is not a file shipped there: where
    the service writes (local storage, spool, the embedded broker's files, …)."""
    shipped = set(build_context())
    found = {}
    for name, field in Settings.model_fields.items():
        default = field.default
        in_app = isinstance(default, Path) and default.is_relative_to(REPO_ROOT)
        if in_app and str(default.relative_to(REPO_ROOT)) not in shipped:
            found[name] = default
    return found


def test_everything_the_service_writes_defaults_to_the_data_volume_owned_by_the_images_user() -> None:
    env = image_env()
    written = written_settings()
    assert {"storage_dir", "spool_dir", "jobs_dir"} <= set(written)  # the rule finds what it should
    settings = Settings(**{name: env[name.upper()] for name in written if name.upper() in env})
    outside = {name: getattr(settings, name) for name in written if not getattr(settings, name).is_relative_to(VOLUME)}
    assert not outside, f"written outside {VOLUME} in the image (set them in the Dockerfile's ENV): {outside}"
    assert settings.embedded_broker_socket.is_relative_to(VOLUME)
    assert Path(env["RAY_TMPDIR"]).is_relative_to(VOLUME)  # Ray's temp folder: RAY_TMPDIR/ray
    steps = dict(instructions())
    assert steps["VOLUME"] == f'["{VOLUME}"]'
    (setup,) = [s for s in run_steps() if "useradd" in s]
    assert "--uid 1000" in setup and f"chown -R upscaler:upscaler {VOLUME}" in setup
    assert steps["USER"] == "1000:1000"


def test_the_dashboard_listens_on_every_interface_of_the_container() -> None:
    assert image_env()["DASHBOARD_HOST"] == "0.0.0.0"


def test_the_dependency_layer_installs_the_lock_with_hashes_before_the_project_is_copied() -> None:
    order = [(name, rest) for name, rest in instructions() if name in {"COPY", "RUN"}]
    copies = [rest for name, rest in order if name == "COPY"]
    assert copies[0] == f"{LOCK} ./" and copies[1] == ". ."  # pyproject.toml comes with the code, after
    step_index = next(i for i, (name, rest) in enumerate(order) if name == "RUN" and LOCK in rest)
    assert order.index(("COPY", ". .")) > step_index
    raw = order[step_index][1]
    assert raw.startswith("--mount=type=cache,target=/root/.cache/pip ")
    assert "--require-hashes" in dependency_step() and "pyproject" not in dependency_step()
    assert "PIP_NO_CACHE_DIR" not in image_env()  # the cache mount is what keeps downloads between builds


def run_dependency_step(tmp_path: Path, torch_index_url: str) -> tuple[list[str], str]:
    """The dependency RUN step with a ``pip`` that records its arguments and the lock it was given."""
    (tmp_path / LOCK).write_text((ROOT / LOCK).read_text())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "pip.log"
    fake = bin_dir / "pip"
    fake.write_text(
        "#!/bin/bash\n"
        f'echo "$*" >> {log}\n'
        f'while [ $# -gt 0 ]; do if [ "$1" = -r ]; then cp "$2" {tmp_path / "installed.lock"}; fi; shift; done\n'
    )
    fake.chmod(0o755)
    script = dependency_step().replace('python -m venv "$VIRTUAL_ENV"', "true")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "TORCH_INDEX_URL": torch_index_url}
    result = subprocess.run(["bash", "-o", "pipefail", "-ec", script], cwd=tmp_path, env=env, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
    return log.read_text().splitlines(), (tmp_path / "installed.lock").read_text()


def lock_names(text: str) -> set[str]:
    return {re.split(r"[=\[ ;]", line, maxsplit=1)[0] for line in text.splitlines() if re.match(r"^[a-z0-9]", line)}


def test_the_default_build_installs_the_whole_lock_with_its_hashes(tmp_path: Path) -> None:
    calls, installed = run_dependency_step(tmp_path, "")
    assert len(calls) == 1 and calls[0].startswith("install --require-hashes -r ")
    assert installed == (ROOT / LOCK).read_text()


def test_the_cpu_build_takes_torch_from_the_index_and_the_rest_from_the_lock_with_hashes(tmp_path: Path) -> None:
    index = "https://download.pytorch.org/whl/cpu"
    calls, installed = run_dependency_step(tmp_path, index)
    locked = (ROOT / LOCK).read_text()
    pins = dict(re.findall(r"^(torch|torchvision)==([^ ;\\]+)", locked, flags=re.M))
    torch = f"torch=={pins['torch']} torchvision=={pins['torchvision']}"
    assert calls[0] == f"install --no-deps --index-url {index} {torch}"
    assert calls[1].startswith("install --require-hashes -r ")
    dropped = lock_names(locked) - lock_names(installed)
    assert {"torch", "torchvision"} <= dropped
    assert all(re.match(r"^(torch|torchvision|triton|nvidia-.*|cuda-.*)$", name) for name in dropped), dropped
    assert {"ray", "spandrel", "filelock", "sympy"} <= lock_names(installed)  # torch's CPU needs stay, hashed
    entries = [e for e in re.split(r"\n(?=[a-z0-9])", installed) if re.match(r"^[a-z0-9]", e)]
    assert entries and all("--hash=sha256:" in entry for entry in entries)


def test_the_lock_holds_the_dependencies_pinned_with_hashes_and_not_the_project() -> None:
    """What ``pip install --require-hashes`` needs before the code is copied: no ``-e .`` or local path
    (the project comes in its own layer), every requirement ``==`` with at least one hash."""
    text = (ROOT / LOCK).read_text()
    assert not re.search(r"^\s*(-e|--editable)\b|^\s*(\.|/|file:)", text, flags=re.M)
    entries = [e for e in re.split(r"\n(?=[a-z0-9])", text) if re.match(r"^[a-z0-9]", e)]
    assert len(entries) > 20
    assert not [e.split()[0] for e in entries if "==" not in e.split()[0] or "--hash=sha256:" not in e]
    names = {re.split(r"[=\[ ;]", e, maxsplit=1)[0] for e in entries}
    assert "visioncloud-upscaler" not in names and {"ray", "torch", "fastapi"} <= names
