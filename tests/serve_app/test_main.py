"""The launcher (python -m serve_app serve): the command it runs, and how it hands on signals."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from serve_app.__main__ import serve_command, serve_env, shutdown_wait_s, write_rendered

# Stands in for `serve run`: says it is up, then exits 0 on SIGINT (its graceful path) and 143 on SIGTERM.
CHILD = textwrap.dedent(
    """
    import signal, sys, time
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        print("up", flush=True)
        time.sleep(60)
    except KeyboardInterrupt:
        print("sigint", flush=True)
        time.sleep(float(sys.argv[1]))
        sys.exit(0)
    """
)
LAUNCHER = "import sys; from serve_app.__main__ import run_forwarding_signals as run; sys.exit(run(sys.argv[1:]))"


def launch(linger_s: float) -> subprocess.Popen[str]:
    # Started the way a shell starts a background job: SIGINT ignored, which the child must not inherit.
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, sys.executable, "-c", CHILD, str(linger_s)],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert process.stdout is not None and process.stdout.readline() == "up\n"
    return process


def test_serve_run_starts_a_local_ray_unless_an_address_is_given() -> None:
    assert serve_command(Path("c.yaml"), None)[-2:] == ["--address", "local"]
    assert serve_command(Path("c.yaml"), "ray://head:10001")[-2:] == ["--address", "ray://head:10001"]
    assert serve_command(Path("c.yaml"), None)[1:3] == ["-m", "serve_app.serve_cli"]


def test_a_local_ray_starts_with_the_ray_settings_unless_the_environment_sets_them() -> None:
    local = serve_env(None, {"PATH": "/bin"})
    assert local["RAY_max_direct_call_object_size"] == str(4 * 1024 * 1024) and local["PATH"] == "/bin"
    assert serve_env(None, {"RAY_max_direct_call_object_size": "1"})["RAY_max_direct_call_object_size"] == "1"
    assert serve_env("ray://head:10001", {"PATH": "/bin"}) == {"PATH": "/bin"}  # the cluster has its own


def test_the_rendered_config_is_named_by_its_content() -> None:
    assert write_rendered("a: 1\n") == write_rendered("a: 1\n") != write_rendered("a: 2\n")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_sigint_reaches_serve_run_as_sigint_and_its_status_is_ours(signum: int) -> None:
    process = launch(linger_s=0)
    process.send_signal(signum)
    assert process.wait(timeout=30) == 0
    assert process.stdout is not None and process.stdout.read() == "sigint\n"


def test_a_second_signal_is_passed_on_as_sigterm() -> None:
    process = launch(linger_s=30)
    process.send_signal(signal.SIGTERM)
    assert process.stdout is not None and process.stdout.readline() == "sigint\n"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 143


def test_the_graceful_wait_is_the_configs_longest_graceful_shutdown_plus_a_margin() -> None:
    document = yaml.safe_load((Path(__file__).parents[2] / "serve_config.yaml").read_text())
    assert shutdown_wait_s(document) == 240 + 30
    command = serve_command(Path("c.yaml"), None, shutdown_wait_s(document))
    assert command[3:5] == ["270", "run"]
