"""One version everywhere: the package (as setuptools reads pyproject.toml), the API's OpenAPI
``info.version``, and the constant both come from."""

from __future__ import annotations

from pathlib import Path

from setuptools.config.pyprojecttoml import read_configuration

from configs.settings import load_settings
from configs.version import VERSION
from deployments.flow.flow import Flow
from deployments.ingress.api import create_api
from tests.fakes import FakeStorage, FakeUpscaler

ROOT = Path(__file__).resolve().parents[2]


def test_the_package_openapi_and_the_constant_state_one_version() -> None:
    package = read_configuration(ROOT / "pyproject.toml", expand=True)["project"]["version"]
    settings = load_settings()
    openapi = create_api(Flow(FakeUpscaler(), FakeStorage(), settings), settings).openapi()["info"]["version"]
    assert package == openapi == VERSION
