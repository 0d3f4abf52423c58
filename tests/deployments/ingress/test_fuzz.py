"""Every route in /openapi.json fuzzed with schemathesis (property-based, in-process over fake handles,
keys and a rate limit on) with every check it has, as ``st run --checks all`` runs them: no 5xx, every
status and header documented, every response matching its schema, invalid data refused, valid data
accepted, 405 with ``Allow`` for a method a path does not take. Bounded: a fixed number of examples per
route, derandomised so a run is repeatable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from configs.settings import load_settings
from deployments.flow.flow import Flow
from deployments.ingress.api import create_api
from deployments.ingress.api_keys import KeyRing
from deployments.ingress.jobs_api import jobs_router
from tests.fakes import FakeJobs, FakeStorage, FakeUpscaler

KEY = "fuzz-key-0123456789"
config = load_settings(rate_limit="10000/minute")
flow = Flow(FakeUpscaler(), FakeStorage(), config)
app = create_api(flow, config, [jobs_router(flow, FakeJobs(), config)], keys=KeyRing.from_keys([KEY]))
ROOT = Path(__file__).resolve().parents[3]
# The repository's schemathesis.toml, as `st run` reads it: which refusals a schema-valid upload may get.
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", app, config=SchemathesisConfig.from_path(ROOT / "schemathesis.toml")
)


@schema.parametrize()
@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_route_answers_5xx_or_off_its_schema(case: Any) -> None:
    case.call_and_validate(headers={"X-API-Key": KEY})  # no checks= : every check schemathesis has


@schema.parametrize()
@settings(max_examples=5, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_without_a_key_no_route_answers_5xx_or_off_its_schema(case: Any) -> None:
    case.call_and_validate()
