"""scripts/test-plan.sh: what scripts/test runs and skips, from the facts it found on the machine, and
the one line it ends with. As root everything runs (scripts/test has installed what was missing); as
anyone else every tier whose parts are present runs, and the line names the rest with the fix."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Plan:
    skip_parts: str
    multinode: str
    skipped: str


def plan(tier: str, *, root: bool, redis: bool, chromium: bool) -> Plan:
    facts = " ".join("yes" if fact else "no" for fact in (root, redis, chromium))
    report = 'printf "%s\\n" "$skip_parts" "$multinode" "$skipped"'
    script = f". scripts/test-plan.sh && test_plan {tier} {facts} && {report}"
    out = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10)
    skip_parts, multinode, skipped = out.stdout.splitlines()
    return Plan(skip_parts, multinode, skipped)


def test_root_with_every_part_runs_every_tier_and_skips_nothing() -> None:
    assert plan("full", root=True, redis=True, chromium=True) == Plan("", "yes", "skipped: nothing")


def test_a_user_who_is_not_root_skips_only_the_multinode_tier_when_the_rest_is_there() -> None:
    assert plan("full", root=False, redis=True, chromium=True) == Plan(
        "", "no", "skipped: multinode tier (needs root for unshare: sudo scripts/test)"
    )


def test_missing_parts_are_skipped_by_name_and_the_line_says_how_to_install_them() -> None:
    result = plan("full", root=False, redis=False, chromium=False)

    assert result.skip_parts == "redis-server chromium"
    assert result.multinode == "no"
    assert result.skipped == (
        "skipped: multinode tier (needs root for unshare: sudo scripts/test); "
        "Redis tests (redis-server not installed; as root: apt-get install redis-server); "
        "browser tests (chromium not installed; as root: apt-get install chromium)"
    )


def test_the_fast_tier_names_the_tiers_it_leaves_out_and_needs_no_browser() -> None:
    assert plan("fast", root=False, redis=True, chromium=False) == Plan(
        "", "no", "skipped: integration and multinode tiers (fast tier; scripts/test runs them)"
    )
