"""Command line: run the service, or upload images to a running one.

python -m serve_app serve [--config serve_config.yaml]   # validates settings, then `serve run`
python -m serve_app upload photo.jpg [more.png …] [--url http://127.0.0.1:8000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import yaml

from configs.settings import REPO_ROOT, SettingsError, load_settings


def render_config(config: Path, port: int) -> str:
    """The Serve config with ``http_options.port`` taken from PORT."""
    document = yaml.safe_load(config.read_text())
    document.setdefault("http_options", {})["port"] = port
    return str(yaml.safe_dump(document, sort_keys=False))


def serve(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()  # fail here, with every bad variable named, not inside a replica
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    storage = f"s3://{settings.s3_bucket}" if settings.s3_bucket else str(settings.storage_dir)
    print(f"VisionCloud Upscaler on http://127.0.0.1:{settings.port}  (storage: {storage})", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        rendered = Path(tmp) / args.config.name
        rendered.write_text(render_config(args.config, settings.port))
        command = [str(Path(sys.executable).with_name("serve")), "run", str(rendered), "--app-dir", str(REPO_ROOT)]
        try:
            return subprocess.call(command, cwd=REPO_ROOT, env=os.environ.copy())
        except KeyboardInterrupt:
            return 130


def upload(args: argparse.Namespace) -> int:
    failed = 0
    with httpx.Client(base_url=args.url, timeout=600) as client:
        for path in args.files:
            with open(path, "rb") as f:
                response = client.post("/api/images/upload", files={"image": (path.name, f)})
            print(json.dumps({"file": str(path), "status": response.status_code, **response.json()}, indent=2))
            failed += response.status_code != 200
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m serve_app", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the service with `serve run`")
    run.add_argument("--config", type=Path, default=REPO_ROOT / "serve_config.yaml")
    run.set_defaults(func=serve)
    send = commands.add_parser("upload", help="upload images to a running service")
    send.add_argument("files", type=Path, nargs="+")
    send.add_argument("--url", default="http://127.0.0.1:8000")
    send.set_defaults(func=upload)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
