"""Multinode tests never run outside scripts/isolated, whatever -m a caller passes: a command-line
``-m`` replaces addopts' marker expression, which let ``scripts/test -m "not integration"`` run the
multinode tier unisolated (and fail)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.isolation import isolated

ROOT = Path(__file__).resolve().parents[1]


def collect(*args: str) -> str:
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120).stdout


@pytest.mark.skipif(isolated(), reason="inside scripts/isolated the multinode tests are meant to run")
@pytest.mark.parametrize("selection", [["-m", "not integration"], ["-m", "multinode"]])
def test_no_marker_expression_selects_a_multinode_test_outside_scripts_isolated(selection: list[str]) -> None:
    out = collect(*selection, "tests/multinode")

    assert "tests/multinode/" not in out
    assert "deselected" in out
