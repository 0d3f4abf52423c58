# syntax=docker/dockerfile:1
# VisionCloud Upscaler: one image for a single host (compose.yaml) and for every pod of the KubeRay
# RayService (configs/kuberay/rayservice.yaml), CPU and GPU nodes alike.
#
#   docker build -t visioncloud/upscaler:0.1.0-ray2.60.0 .
#       torch from PyPI: its Linux wheels carry CUDA (the host only needs the NVIDIA driver and container
#       toolkit), and run on CPUs too. Installed: ~5.6 GB of Python packages (nvidia 3.2, torch 1.2, triton 0.9,
#       ray 0.24 GB; measured in this project's venv).
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu -t visioncloud/upscaler:0.1.0-ray2.60.0-cpu .
#       CPU-only torch: its wheel unpacks to 0.7 GB instead of 5.3 GB with CUDA, for CPU nodes and laptops.
#   docker run --rm -p 127.0.0.1:8000:8000 -p 127.0.0.1:8265:8265 visioncloud/upscaler:0.1.0-ray2.60.0
#       runs with its defaults: everything it writes (local storage, spool, the embedded broker's Redis
#       files, Ray's temp folder) is under /data, a volume owned by the image's user; mount one there
#       (-v upscaler-data:/data) to keep it. The Ray dashboard listens on every interface of the container
#       (DASHBOARD_HOST) so a published port reaches it; publish it on 127.0.0.1 only.
#
# Layers: the dependencies come from requirements.lock alone (pinned, with hashes: pip refuses anything
# else), so editing pyproject.toml (a tool's settings, the project's metadata) or the code rebuilds only
# the small project layer, never the ~5.6 GB one; BuildKit keeps pip's download cache between builds.
# The CPU build (TORCH_INDEX_URL) takes torch and torchvision at the lock's versions from that index
# (checked against the index's own hashes, not the lock's: its wheels are other files), then everything
# else from the lock with its hashes, minus what only torch's CUDA build needs (nvidia-*, cuda-*, triton).
#
# Base: python slim, not rayproject/ray. The official image is Ubuntu 24.04 upgraded in place with git,
# cmake, g++, tmux, sudo (password-less for its user), HAProxy and a Miniforge Python (Ray's
# docker/base-deps/Dockerfile); its -gpu variants start from NVIDIA's CUDA images, whose CUDA libraries
# torch's wheels bring again. This image holds only what the service imports, runs as a user without
# sudo, and the CPU and GPU builds differ in one argument. Ray is the same either way: the version pinned
# in pyproject.toml, checked below against RAY_VERSION (KubeRay's rayVersion must match it).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

ARG RAY_VERSION=2.60.0
# Empty: torch from PyPI (CUDA build). A PyTorch wheel index (e.g. its /whl/cpu) for a CPU-only build.
ARG TORCH_INDEX_URL=""

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    # Every thread allocates from the main heap, where the engine keeps its large blocks (serve_config.yaml).
    MALLOC_ARENA_MAX=1 \
    RAY_USAGE_STATS_ENABLED=0 \
    # Ray's settings for every Ray process in the container (configs/ray_env.py, checked by a test).
    RAY_max_direct_call_object_size=4194304 \
    # Everything the service writes, on the /data volume (tests/test_container_image.py checks every
    # writable setting): local storage, the spool, the embedded broker's Redis files, Ray's temp folder
    # (/data/ray: its sessions, logs, sockets and spilled objects).
    STORAGE_DIR=/data/storage \
    SPOOL_DIR=/data/spool \
    JOBS_DIR=/data/jobs \
    RAY_TMPDIR=/data \
    # The local Ray's dashboard on every interface of the container, for the port compose publishes
    # (on the host's loopback). Ray's default, 127.0.0.1, is unreachable through a published port.
    DASHBOARD_HOST=0.0.0.0 \
    PORT=8000

# tini is PID 1: it hands SIGTERM to the launcher, which passes it to `serve run` as SIGINT (its graceful
# path), and reaps the processes Ray leaves to it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini=0.19.0-1+b3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 1000 upscaler \
    && useradd --uid 1000 --gid 1000 --create-home --shell /usr/sbin/nologin upscaler \
    && mkdir -p /data/storage /data/spool /data/jobs /data/ray \
    && chown -R upscaler:upscaler /data

WORKDIR /app

# Dependencies first, from the lock file alone: this layer is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m venv "$VIRTUAL_ENV" \
    && lock="$(mktemp)" \
    && if [ -n "$TORCH_INDEX_URL" ]; then \
        sed -nE 's/^((torch|torchvision)==[^ ;\\]+).*/\1/p' requirements.lock \
            | xargs pip install --no-deps --index-url "$TORCH_INDEX_URL" \
        && awk '/^[a-z0-9]/ { skip = ($0 ~ /^(torch|torchvision|triton|nvidia-[a-z0-9-]+|cuda-[a-z0-9-]+)(\[[^]]*\])?==/) } !skip' \
            requirements.lock > "$lock"; \
    else \
        cp requirements.lock "$lock"; \
    fi \
    && pip install --require-hashes -r "$lock" \
    && rm "$lock"

# The project itself (what .dockerignore lets through: code, bundled weights, Serve configs), installed as
# the README does, without dependencies (the lock's are all there) and editable: serve_config.yaml, the
# web page and configs/ are found beside the code in /app, where the settings' REPO_ROOT points.
COPY . .
RUN pip install --no-cache-dir --no-deps -e . \
    && python -c "import ray, sys; sys.exit(ray.__version__ != '$RAY_VERSION' and f'ray {ray.__version__} != $RAY_VERSION')"

USER 1000:1000
EXPOSE 8000 8265
VOLUME ["/data"]
# /api/health through this container's own Serve proxy: 200 only once the proxy routes the app (a proxy
# without the app's routes answers 404) and the app can store uploads (serve_app/probe.py).
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-m", "serve_app.probe"]

# `python -m serve_app serve` checks the settings, then runs `serve run serve_config.yaml` on a local Ray
# (KubeRay pods replace this command with `ray start`). Other commands: `docker run IMAGE upload …`.
ENTRYPOINT ["tini", "--", "python", "-m", "serve_app"]
CMD ["serve"]
