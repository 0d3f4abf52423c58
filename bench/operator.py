"""The operator's path, black-box: ``serve run serve_config.yaml`` with an API key, ``RATE_LIMIT=20/minute``
and ``MAX_JOB_IMAGES=10``, used the way a newcomer and the project's own clients use it.

Checks over HTTP, the command line and a real browser (Debian's chromium through Playwright):

- an upload naming an unknown model: 422 ``unknown_model``;
- ``/openapi.json`` declares the ``X-API-Key`` scheme and the upload route requires it;
- ``/docs`` loads nothing from another origin;
- ``Idempotency-Key``: two identical job posts answer one job; the same key with another body is refused (422);
- ``visioncloud --version`` prints the version;
- ``visioncloud upload`` of 24 files with ``--json`` exits 0 with 24 successes;
- 25 files dropped on the web page in headless Chromium are all stored.

One API key for everything, so every check shares one ``20/minute`` budget as a real operator's would:
the clients have to wait out their 429s. One line per check; exit status 1 when any failed.

    python -m bench.operator [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from bench.images import png
from bench.launcher import free_port, serving
from configs.settings import REPO_ROOT

KEY = "operator-check-key-0123456789abcdef"
CHECKS: list[dict[str, Any]] = []
CHROMIUM = Path("/usr/bin/chromium")


def check(name: str, ok: bool, **figures: Any) -> None:
    CHECKS.append({"check": name, "passed": ok, **figures})
    print(f"{'PASS' if ok else 'FAIL'}  {name}  {json.dumps(figures)}", flush=True)


@dataclass(frozen=True)
class Service:
    url: str
    storage: Path
    folder: Path

    def stored(self, prefix: str) -> set[str]:
        """Stems of the stored objects whose file name starts with ``prefix`` (name-<digest>.<ext>)."""
        found = (p for p in self.storage.rglob(f"{prefix}*") if p.is_file())
        return {p.stem.rsplit("-", 1)[0] for p in found}


@contextmanager
def service() -> Iterator[Service]:
    """``serve run`` on a copy of serve_config.yaml that differs only in its port, from the repository root."""
    port, folder = free_port(), Path(tempfile.mkdtemp(prefix="bench-operator-"))
    document = yaml.safe_load((REPO_ROOT / "serve_config.yaml").read_text())
    document["http_options"]["port"] = port
    config = folder / "serve_config.yaml"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "disabled",
        "STORAGE_DIR": str(folder / "storage"),
        "JOBS_DIR": str(folder / "jobs"),
        "API_KEYS": KEY,
        "RATE_LIMIT": "20/minute",
        "MAX_JOB_IMAGES": "10",
    }
    serve = [str(Path(sys.executable).with_name("serve")), "run", str(config)]
    url = f"http://127.0.0.1:{port}"
    try:
        # SIGINT: serve run's graceful path, which shuts the app and its Ray down
        with serving(serve, env, folder / "serve.log", url, stop=signal.SIGINT):
            yield Service(url, folder / "storage", folder)
    finally:
        print(f"(service log: {folder / 'serve.log'})", flush=True)


def unknown_model(svc: Service) -> None:
    answer = httpx.post(
        f"{svc.url}/api/images/upload",
        files={"image": ("a.png", png(64, 48, seed=1))},
        data={"model": "no-such-model"},
        headers={"X-API-Key": KEY},
        timeout=60,
    )
    code = answer.json().get("error") if answer.headers.get("content-type", "").startswith("application/json") else None
    check(
        "an unknown model", answer.status_code == 422 and code == "unknown_model", status=answer.status_code, code=code
    )


def openapi_scheme(svc: Service) -> None:
    spec = httpx.get(f"{svc.url}/openapi.json", timeout=30).json()
    schemes = spec.get("components", {}).get("securitySchemes", {})
    header = [s for s in schemes.values() if s.get("type") == "apiKey" and s.get("in") == "header"]
    upload = spec["paths"]["/api/images/upload"]["post"]
    required = {name for entry in upload.get("security", []) for name in entry}
    ok = any(s.get("name") == "X-API-Key" for s in header) and bool(required & set(schemes))
    check("OpenAPI declares the X-API-Key scheme", ok, schemes=sorted(schemes), upload_security=sorted(required))


def docs_same_origin(svc: Service) -> None:
    from playwright.sync_api import sync_playwright

    origin, foreign = urlsplit(svc.url).netloc, []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page()
        page.on("request", lambda r: foreign.append(r.url) if urlsplit(r.url).netloc not in (origin, "") else None)
        page.goto(f"{svc.url}/docs", wait_until="networkidle")
        operations = page.locator(".opblock").count()
        browser.close()
    check("/docs loads nothing from another origin", not foreign and operations > 0, foreign=foreign,
          operations=operations)  # fmt: skip


def post_job(svc: Service, key: str, seed: int) -> httpx.Response:
    files = [("images", (f"idem-{seed}-{i}.png", png(64, 48, seed=seed + i))) for i in range(2)]
    headers = {"X-API-Key": KEY, "Idempotency-Key": key}
    for _ in range(10):  # the shared budget may be spent: wait out 429s as any client must
        answer = httpx.post(f"{svc.url}/api/jobs", files=files, headers=headers, timeout=60)
        if answer.status_code not in (409, 429):
            return answer
        time.sleep(float(answer.headers.get("retry-after", "3")))
    return answer


def idempotency(svc: Service) -> None:
    first, again, other = post_job(svc, "op-key-1", 10), post_job(svc, "op-key-1", 10), post_job(svc, "op-key-1", 20)
    ids = [a.json().get("job_id") if a.is_success else None for a in (first, again)]
    check(
        "Idempotency-Key: one job for two identical posts; another body refused",
        first.is_success and ids[0] is not None and ids[0] == ids[1] and other.status_code == 422,
        statuses=[first.status_code, again.status_code, other.status_code],
        replayed=again.headers.get("idempotent-replayed"),
        same_job=ids[0] == ids[1],
    )


def cli() -> list[str]:
    script = Path(sys.executable).with_name("visioncloud")
    return [str(script)] if script.exists() else [sys.executable, "-m", "serve_app"]


def cli_version(svc: Service) -> None:
    done = subprocess.run([*cli(), "--version"], capture_output=True, text=True, timeout=60)
    check("visioncloud --version", done.returncode == 0 and "0." in done.stdout, output=done.stdout.strip())


def cli_upload(svc: Service) -> None:
    folder = svc.folder / "cli"
    folder.mkdir()
    for i in range(24):
        (folder / f"cli-{i:02d}.png").write_bytes(png(64 + i, 48, seed=100 + i))
    started = time.monotonic()
    env = {**os.environ, "VISIONCLOUD_URL": svc.url, "VISIONCLOUD_API_KEY": KEY}
    done = subprocess.run([*cli(), "upload", str(folder), "--json"], capture_output=True, text=True, env=env,
                          timeout=900)  # fmt: skip
    summary = json.loads(done.stdout).get("summary", {}) if done.stdout.strip().startswith("{") else {}
    check(
        "visioncloud upload: 24 files, --json",
        done.returncode == 0 and summary.get("succeeded") == 24,
        exit=done.returncode,
        summary=summary,
        seconds=round(time.monotonic() - started, 1),
        stderr_tail=done.stderr[-300:] if done.returncode else "",
    )


def page_drop(svc: Service) -> None:
    from playwright.sync_api import expect, sync_playwright

    paths = []
    for i in range(25):
        path = svc.folder / f"drop-{i:02d}.png"
        path.write_bytes(png(72, 40 + i, seed=300 + i))
        paths.append(str(path))
    started = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(svc.url)
        page.get_by_label("Key", exact=True).fill(KEY)
        page.get_by_role("button", name="Save key").click()
        page.set_input_files("#file-input", paths)
        page.get_by_role("button", name="Upscale 25 images").click()
        done = page.locator(".queue-item[data-status=success]")
        with suppress(AssertionError):  # counted below: a page that stops short is a failed check
            expect(done).to_have_count(25, timeout=600_000)
        succeeded = done.count()
        browser.close()
    stored = svc.stored("drop-")
    check(
        "25 files dropped on the web page are all stored",
        succeeded == 25 and stored >= {Path(p).stem for p in paths},
        succeeded_on_page=succeeded,
        stored=len(stored),
        seconds=round(time.monotonic() - started, 1),
    )


CHECKS_IN_ORDER: list[Callable[[Service], None]] = [
    unknown_model,
    openapi_scheme,
    docs_same_origin,
    idempotency,
    cli_version,
    cli_upload,
    page_drop,
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the checks to this file")
    args = parser.parse_args(argv)
    with service() as svc:
        for step in CHECKS_IN_ORDER:
            try:
                step(svc)
            except Exception as exc:  # a check that cannot run is a failed check, and the rest still run
                check(step.__name__, False, error=f"{type(exc).__name__}: {exc}")
    failed = [c["check"] for c in CHECKS if not c["passed"]]
    print(f"{len(CHECKS) - len(failed)} passed, {len(failed)} failed", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"checks": CHECKS}, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
