"""How the ingress answers errors: the one lookup from anything raised to a named error, and the JSON
every refusal has.

Every refusal is answered as ``{"success": false, "message": …, "error": <code>, "request_id": …}``
(plus the error's ``details()``) with the status its class carries (``deployments/contracts/errors.py``)
and nothing stored. The OpenAPI list of error responses is generated from the same classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from deployments.contracts.errors import (
    InvalidParameterError,
    MalformedRequestError,
    MissingFieldError,
    ServiceError,
    UploadTooLargeError,
    as_service_error,
)


class HTTPRefusal(ServiceError):
    """A refusal raised by Starlette or FastAPI themselves (no such route, a method the route does not
    take, a malformed request): it answers with the status they chose and a code named after it."""

    def __init__(self, status: int, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self._status = HTTPStatus(status)
        self._headers = dict(headers or {})

    def headers(self) -> dict[str, str]:
        """The headers Starlette put on its refusal (``Allow`` on a 405), which the answer keeps."""
        return self._headers

    # Read-only, carried by the instance: the base's class attributes are only ever read.
    @property
    def status(self) -> HTTPStatus:  # type: ignore[override]
        return self._status

    @property
    def code(self) -> str:  # type: ignore[override]
        return self._status.phrase.lower().replace(" ", "_")


class UnhealthyError(ServiceError):
    """The service cannot take uploads now. ``/api/health`` answers with this status and its own body
    (``HealthResponse``), not the error body, so the route lists are not documented with it."""

    code = "unhealthy"
    status = HTTPStatus.SERVICE_UNAVAILABLE

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def service_error(exc: Exception, max_upload_bytes: int) -> ServiceError:
    """The named error that answers for anything a route raised: the one lookup of every HTTP door.
    FastAPI's own refusals get theirs (a bad parameter, a missing multipart body, its body limit);
    anything unnamed is an ``InternalError``."""
    if isinstance(exc, RequestValidationError):
        bad = [e for e in exc.errors() if e.get("loc", ("body",))[0] in ("query", "path")]
        if not bad:  # a missing or mistyped multipart body: name the first field the schema requires
            return MissingFieldError(_body_field(exc))
        return InvalidParameterError("; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in bad))
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:  # FastAPI's body limit, before reading it all
            return UploadTooLargeError(max_upload_bytes)
        if exc.status_code == HTTPStatus.BAD_REQUEST:  # a body its parser could not read
            return MalformedRequestError(str(exc.detail))
        return HTTPRefusal(exc.status_code, str(exc.detail), exc.headers)
    return as_service_error(exc)


def _body_field(exc: RequestValidationError) -> str:
    """The multipart field a body error is about (``image`` when FastAPI names none: not multipart)."""
    for error in exc.errors():
        loc = error.get("loc", ())
        if len(loc) > 1 and loc[0] == "body" and isinstance(loc[1], str):
            return loc[1]
    return "image"


def error_body(message: str, code: str, request_id: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"success": False, "message": message, "error": code, **extra}
    if request_id:
        body["request_id"] = request_id
    return body


def _named_errors(cls: type[ServiceError]) -> list[type[ServiceError]]:
    return [cls, *(c for sub in cls.__subclasses__() for c in _named_errors(sub))]


def documented_errors(model: type) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=``: every status a client is refused with (4xx, and 503 for "retry later"),
    with the codes it answers. Errors whose status is their instance's (``HTTPRefusal``, a refused job
    answering as its first file) and health's own 503 are left out."""
    codes: dict[int, set[str]] = {}
    for cls in _named_errors(ServiceError):
        status = cls.status  # a property, not a status, on a class whose instances carry theirs
        if isinstance(status, HTTPStatus) and cls is not UnhealthyError and (status < 500 or status == 503):
            codes.setdefault(int(status), set()).add(cls.code)
    return {
        status: {"model": model, "description": "error: " + ", ".join(sorted(names))}
        for status, names in sorted(codes.items())
    }
