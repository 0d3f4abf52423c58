"""Whether this process runs under scripts/isolated (own PID, network and mount namespaces).

The multinode tier stops every Ray it can see, so its tests run only there: tests/multinode fails its
tests outside, and tests/conftest.py deselects them from any other run, whatever ``-m`` selects.
"""

from __future__ import annotations

from pathlib import Path

ISOLATION_MARK = b"vcs-isolated-ray"


def isolated() -> bool:
    """PID 1 of this PID namespace is scripts/isolated's shell: no process outside it is visible. (An
    environment variable could be exported by anyone; PID 1's command line cannot.)"""
    return ISOLATION_MARK in Path("/proc/1/cmdline").read_bytes().split(b"\0")
