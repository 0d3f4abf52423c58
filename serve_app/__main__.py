"""Command line: run the service, or use a running one.

visioncloud serve [--config serve_config.yaml]   # validates settings, then runs `serve run`
visioncloud upload PATH… [--recursive] [--out DIR] [--json] [--url http://127.0.0.1:8000]
visioncloud status [--json] [--url http://127.0.0.1:8000]
visioncloud --version

``visioncloud`` is the console script the package installs; ``python -m serve_app`` is the same program.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from configs.ray_env import RAY_ENV
from configs.settings import REPO_ROOT, SettingsError, load_settings
from configs.version import VERSION
from serve_app.commands import add_status, add_upload


def render_config(config: Path, port: int) -> str:
    """The Serve config with ``http_options.port`` taken from PORT."""
    document = yaml.safe_load(config.read_text())
    document.setdefault("http_options", {})["port"] = port
    return str(yaml.safe_dump(document, sort_keys=False))


def write_rendered(text: str) -> Path:
    """The rendered config in the temp folder, named by its content (atomic; reruns reuse the same file)."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"visioncloud-serve-{os.getuid()}-{digest}.yaml"
    if not path.is_file() or path.read_text() != text:
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(text)
        partial.replace(path)
    return path


SERVE_DEFAULT_GRACE_S = 20.0  # Serve's graceful_shutdown_timeout_s for a deployment that sets none
# After the upscale deadline an upload still stores its result (the flow retries a put for up to 20 s)
# and answers: a replica stopping waits for that too.
SHUTDOWN_MARGIN_S = 30.0


def graceful_shutdowns(document: dict[str, Any]) -> dict[str, float]:
    """Each configured deployment's ``graceful_shutdown_timeout_s`` (Serve's default where unset)."""
    return {
        f"{app.get('name', 'default')}.{d['name']}": float(d.get("graceful_shutdown_timeout_s", SERVE_DEFAULT_GRACE_S))
        for app in document.get("applications", [])
        for d in app.get("deployments", [])
    }


def short_graceful_shutdowns(document: dict[str, Any], upscale_timeout_s: float) -> list[str]:
    """Deployments that would be stopped before an upload accepted just before could end."""
    floor = upscale_timeout_s + SHUTDOWN_MARGIN_S
    return [name for name, timeout in graceful_shutdowns(document).items() if timeout < floor]


def shutdown_wait_s(document: dict[str, Any]) -> float:
    """How long stopping may wait for Serve: the longest graceful shutdown, plus the margin."""
    return max(graceful_shutdowns(document).values(), default=SERVE_DEFAULT_GRACE_S) + SHUTDOWN_MARGIN_S


def serve_command(config: Path, address: str | None, shutdown_wait: float = SERVE_DEFAULT_GRACE_S) -> list[str]:
    """``serve run`` on a new local Ray unless RAY_ADDRESS names a cluster: with no address Ray joins the
    last cluster any ``ray start`` on the machine recorded in /tmp/ray, which is rarely what was meant."""
    run = ["run", str(config), "--app-dir", str(REPO_ROOT), "--address", address or "local"]
    # Ray's `serve` command, with a graceful path that waits for the ingress (serve_app/serve_cli.py).
    return [sys.executable, "-m", "serve_app.serve_cli", f"{shutdown_wait:g}", *run]


def serve_env(address: str | None, environ: dict[str, str]) -> dict[str, str]:
    """``serve run``'s environment: the Ray settings of ``configs/ray_env.py`` (under any value already
    set) when it starts a local Ray; a cluster was started with its own."""
    return environ if address else {**RAY_ENV, **environ}


def serve(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()  # fail here, with every bad variable named, not inside a replica
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    storage = f"s3://{settings.s3_bucket}" if settings.s3_bucket else str(settings.storage_dir)
    print(f"VisionCloud Upscaler on http://127.0.0.1:{settings.port}  (storage: {storage})", flush=True)
    text = render_config(args.config, settings.port)
    document = yaml.safe_load(text)
    for name in short_graceful_shutdowns(document, settings.upscale_timeout_s):
        print(
            f"warning: {name} stops after graceful_shutdown_timeout_s, under UPSCALE_TIMEOUT_S="
            f"{settings.upscale_timeout_s:g} + {SHUTDOWN_MARGIN_S:g} s: uploads in flight at a stop may fail",
            file=sys.stderr,
        )
    address = os.environ.get("RAY_ADDRESS")
    command = serve_command(write_rendered(text), address, shutdown_wait_s(document))
    return run_forwarding_signals(command, serve_env(address, dict(os.environ)))


def run_forwarding_signals(command: list[str], env: dict[str, str] | None = None) -> int:
    """Run ``command`` (``serve run``) until it ends and exit with its status (128+N if signal N ended it).

    The first SIGTERM or SIGINT we get (``docker stop``, systemd, Kubernetes, Ctrl-C) reaches it as
    SIGINT: its graceful path, where it waits for the uploads the ingress holds (``serve_cli.py``), then
    ``serve.shutdown()`` lets replicas finish what they hold, then the Ray it started stops, and it exits
    0. (Its SIGTERM path stops Ray from inside a signal handler and aborts.) Any further signal is passed
    on as SIGTERM. It runs in its own session, so a Ctrl-C in a terminal reaches it once, through us, and
    with SIGINT at its default even when we were started in the background, where shells ignore SIGINT."""
    stop = {signal.SIGTERM, signal.SIGINT}

    def in_child() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stop)

    # Held until the handlers are in place: a SIGTERM that arrives meanwhile is forwarded, not lost.
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    child = subprocess.Popen(command, cwd=REPO_ROOT, env=env, start_new_session=True, preexec_fn=in_child)
    received = 0

    def forward(signum: int, frame: object) -> None:
        nonlocal received
        received += 1
        child.send_signal(signal.SIGINT if received == 1 else signal.SIGTERM)

    for signum in stop:
        signal.signal(signum, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, stop)
    status = child.wait()
    return 128 - status if status < 0 else status


def version() -> str:
    """The service's version from its one source (configs/version.py, which the package metadata and
    OpenAPI read too), so a checkout that is not reinstalled never prints a stale one."""
    return VERSION


def program_name(argv0: str) -> str:
    """``visioncloud`` as the console script, ``python -m serve_app`` as a module (argv[0] is __main__.py)."""
    name = Path(argv0).name
    return "python -m serve_app" if name in ("__main__.py", "") else name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=program_name(sys.argv[0]), description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the service with `serve run`")
    run.add_argument("--config", type=Path, default=REPO_ROOT / "serve_config.yaml")
    run.set_defaults(func=serve)
    add_upload(commands)
    add_status(commands)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
