"""Command line: run the service, or use a running one.

python -m serve_app serve [--config serve_config.yaml]   # validates settings, then `serve run`
python -m serve_app upload PATH… [--recursive] [--out DIR] [--json] [--url http://127.0.0.1:8000]
python -m serve_app status [--json] [--url http://127.0.0.1:8000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from configs.settings import REPO_ROOT, SettingsError, load_settings
from serve_app.commands import add_status, add_upload


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m serve_app", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
