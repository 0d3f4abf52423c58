"""scripts/setup on a Debian or Ubuntu machine whose Python lacks ensurepip (python3.X-venv not
installed): as root it installs the package, otherwise it stops before creating anything and names the
exact command. Run with fake ``python3.11``, ``id`` and ``apt-get`` first on PATH in a copy of the
script, so nothing is installed and the caller's uid does not matter."""

from __future__ import annotations

import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Answers the only questions scripts/setup asks an interpreter; `-m venv` makes a .venv whose python
# logs its pip calls. ensurepip is importable once the fake apt-get has "installed" python3.11-venv.
FAKE_PYTHON = """#!/bin/bash
case "$*" in
  *"import ensurepip"*) [ -f "$FAKE/ensurepip" ] ;;
  *version_info*) echo python3.11-venv ;;
  "-m venv .venv")
    mkdir -p .venv/bin
    printf '#!/bin/bash\\necho "$*" >> "$FAKE/pip.log"\\n' > .venv/bin/python
    chmod +x .venv/bin/python ;;
  *) echo "unexpected: $*" >&2; exit 97 ;;
esac
"""
PIP_INSTALL = "-m pip install --quiet --disable-pip-version-check"
PROJECT_INSTALL = f"{PIP_INSTALL} --no-deps --no-build-isolation -e ."
FAKE_ID = '#!/bin/bash\necho "$FAKE_UID"\n'
FAKE_APT = '#!/bin/bash\necho "$*" >> "$FAKE/apt.log"\ncase "$*" in *install*) touch "$FAKE/ensurepip" ;; esac\n'


@dataclass
class Machine:
    repo: Path
    fake: Path

    def setup(self, uid: int) -> subprocess.CompletedProcess[str]:
        env = {"PATH": f"{self.fake / 'bin'}:/usr/bin:/bin", "FAKE": str(self.fake), "FAKE_UID": str(uid)}
        return subprocess.run(
            [str(self.repo / "scripts" / "setup"), "dev"], env=env, capture_output=True, text=True, timeout=30
        )

    def log(self, name: str) -> list[str]:
        path = self.fake / name
        return path.read_text().splitlines() if path.exists() else []


def executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    """A copy of scripts/setup beside a pyproject and locks, and a Python with no ensurepip."""
    repo, fake = tmp_path / "repo", tmp_path / "fake"
    (repo / "scripts").mkdir(parents=True)
    (fake / "bin").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup", repo / "scripts" / "setup")
    for name in ("pyproject.toml", "requirements.lock", "requirements-dev.lock"):
        (repo / name).write_text("")
    executable(fake / "bin" / "python3.11", FAKE_PYTHON)
    executable(fake / "bin" / "id", FAKE_ID)
    executable(fake / "bin" / "apt-get", FAKE_APT)
    return Machine(repo, fake)


def test_a_user_who_is_not_root_is_told_the_exact_command_and_nothing_is_created(machine: Machine) -> None:
    result = machine.setup(uid=1000)

    assert result.returncode == 1
    assert "ensurepip module is missing" in result.stderr
    assert "    sudo apt-get install python3.11-venv\n" in result.stderr
    assert not (machine.repo / ".venv").exists()
    assert machine.log("apt.log") == []


def test_root_installs_the_venv_package_then_the_locked_dependencies_and_the_project(machine: Machine) -> None:
    result = machine.setup(uid=0)

    assert result.returncode == 0, result.stderr
    assert machine.log("apt.log") == ["update -qq", "install -y -qq python3.11-venv"]
    assert machine.log("pip.log") == [f"{PIP_INSTALL} --require-hashes -r requirements-dev.lock", PROJECT_INSTALL]


def test_a_venv_left_without_pip_by_a_failed_attempt_is_made_again(machine: Machine) -> None:
    (machine.fake / "ensurepip").touch()
    broken = machine.repo / ".venv" / "bin" / "python"
    broken.parent.mkdir(parents=True)
    executable(broken, "#!/bin/bash\nexit 1\n")  # `python -m pip` fails: Debian's venv stopped at ensurepip

    result = machine.setup(uid=1000)

    assert result.returncode == 0, result.stderr
    assert machine.log("pip.log")[-2:] == [f"{PIP_INSTALL} --require-hashes -r requirements-dev.lock", PROJECT_INSTALL]
