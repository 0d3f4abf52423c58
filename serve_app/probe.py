"""Health and readiness probe: ``python -m serve_app.probe [URL …]`` exits 0 when every URL answers 200.

With no URL it asks ``/api/health`` of this node's own Serve proxy, ``http://127.0.0.1:PORT``: the image's
HEALTHCHECK (which compose uses) and the KubeRay worker pods' readiness probe. Asking the app through the
node's proxy is the point: a proxy that has not yet received the app's routes (a node that joined during
a scale-up) answers every path 404 ``Path '/api/health' not found``, while Serve's ``/-/healthz``, the
check KubeRay runs by default, already answers "success"; traffic sent there meanwhile got 404s. A 200
from ``/api/health`` means this proxy routes the app and the app can store uploads.

Standard library only, and no proxy from the environment (``HTTP_PROXY`` must not carry a loopback
probe): it runs every few seconds, and the image has no ``wget`` or ``curl`` for KubeRay's default probes.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request

from configs.settings import SettingsError, load_settings

TIMEOUT_S = 4.0
HEALTH_PATH = "/api/health"


def failure(url: str, timeout_s: float = TIMEOUT_S) -> str | None:
    """``None`` when ``url`` answers 200, else why not (status and the start of the body, or the error)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout_s) as response:
            status = int(response.status)
            return None if status == 200 else f"{url}: {status}"
    except urllib.error.HTTPError as exc:
        body = exc.read(200).decode("utf-8", "replace")
        return f"{url}: {exc.code} {body}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{url}: {exc}"


def default_url() -> str:
    """``/api/health`` on this node's Serve proxy, at the port the settings give (PORT)."""
    return f"http://127.0.0.1:{load_settings().port}{HEALTH_PATH}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serve_app.probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("urls", nargs="*", help=f"URLs that must answer 200 (default: this node's {HEALTH_PATH})")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds per URL")
    args = parser.parse_args(argv)
    try:
        urls = args.urls or [default_url()]
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    failures = [reason for url in urls if (reason := failure(url, args.timeout))]
    for reason in failures:
        print(reason, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
