"""Every distribution the shipped packages import is declared, and the lock files hold every declared
dependency at a release the declaration allows, with hashes (scripts/setup and the Dockerfile install
them with --require-hashes)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ["serve_app", "deployments", "models", "configs"]
PINNED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$", re.MULTILINE)


def declared(extra: str | None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = project["dependencies"] + (project["optional-dependencies"][extra] if extra else [])
    return [Requirement(name) for name in names]


def locked(lock: str) -> dict[str, str]:
    return {canonicalize_name(name): version for name, version in PINNED.findall((ROOT / lock).read_text())}


def test_deptry_finds_no_undeclared_or_transitive_import_in_the_shipped_packages() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "deptry", *SHIPPED], cwd=ROOT, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("lock", "extra"), [("requirements.lock", None), ("requirements-dev.lock", "dev")])
def test_the_lock_pins_every_declared_dependency_within_its_range_with_hashes(lock: str, extra: str | None) -> None:
    pins = locked(lock)
    text = (ROOT / lock).read_text()

    for requirement in declared(extra):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{lock} lacks {name}: recompile it (README, Dependencies)"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{lock}: {name}=={pins[name]}"
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):  # a pinned release with its hashes and "# via"
        if PINNED.match(block):
            assert "--hash=sha256:" in block, block


def test_the_patched_starlette_is_pinned_to_the_minor_its_patch_was_written_for() -> None:
    starlette = next(r for r in declared(None) if r.name == "starlette")

    assert starlette.specifier.contains("1.10.0") and not starlette.specifier.contains("1.11.0")
    assert "Starlette 1.10" in (ROOT / "deployments" / "ingress" / "multipart.py").read_text()
