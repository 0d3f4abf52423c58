"""The one place a named error becomes its JSON response, and the request id every answer carries."""

from __future__ import annotations

import logging
import uuid

from fastapi.responses import JSONResponse
from ray import serve

from deployments.contracts.errors import ServiceError
from deployments.ingress.errors import error_body
from deployments.ingress.metrics import IngressMetrics

log = logging.getLogger("ray.serve")


def request_id() -> str:
    """Serve's own request id: its proxy returns it as ``X-Request-ID`` (honouring one the client
    sent) and its replica logs carry it, so one id finds a request everywhere."""
    return serve.context._get_serve_request_context().request_id or uuid.uuid4().hex


class Responder:
    """Turns any named error into its JSON response and counts it: the one place that does. Routes
    raise, the middleware (keys, limits, deadlines) calls it directly."""

    def __init__(self, metrics: IngressMetrics) -> None:
        self.metrics = metrics

    def __call__(self, exc: ServiceError) -> JSONResponse:
        if exc.status < 500:
            self.metrics.rejected(exc.code)
        else:
            log.error("%s: %s", exc.code, exc.message)
        body = error_body(exc.message, exc.code, request_id(), **exc.details())
        return JSONResponse(body, status_code=exc.status, headers=exc.headers() or None)
