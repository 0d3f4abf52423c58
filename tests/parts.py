"""Parts of the test machine that a person who is not root may lack (Redis, chromium).

scripts/test installs them as root; otherwise it lists the missing ones in ``VCS_TEST_SKIP`` and names
them in its last line, and the tests that need them skip. Outside scripts/test (nothing listed) a
missing part still fails the test that needs it, with the caller's message.
"""

from __future__ import annotations

import os

import pytest


def skip_if_listed(part: str) -> None:
    """Skip the calling test when scripts/test listed ``part`` as missing; return otherwise."""
    if part in os.environ.get("VCS_TEST_SKIP", "").split():
        pytest.skip(f"{part} is not installed (scripts/test's last line says how to install it)")
