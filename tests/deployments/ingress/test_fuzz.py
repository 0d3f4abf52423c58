"""Every route in /openapi.json fuzzed with schemathesis (property-based, in-process over fake handles,
keys and a rate limit on): no 5xx, every status documented, every response matching its schema.
Bounded: a fixed number of examples per route, derandomised so a run is repeatable."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

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
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@schema.parametrize()
@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_route_answers_5xx_or_off_its_schema(case: Any) -> None:
    case.call_and_validate(headers={"X-API-Key": KEY}, checks=CHECKS)


@schema.parametrize()
@settings(max_examples=5, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_without_a_key_no_route_answers_5xx_or_off_its_schema(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)
