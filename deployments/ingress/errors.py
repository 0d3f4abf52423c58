"""The one table that maps every named error to its HTTP status, and the JSON every refusal has.

Every refusal is answered as ``{"success": false, "message": …, "error": <code>, "request_id": …}``
with nothing stored. The OpenAPI list of error responses is generated from the same table.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from deployments.contracts.errors import (
    AnimatedImageError,
    BodyTimeoutError,
    CorruptImageError,
    EmptyUploadError,
    InvalidImagesError,
    InvalidWebhookError,
    JobNotFoundError,
    JobsUnavailableError,
    KeyFailuresError,
    MissingFieldError,
    NotAnImageError,
    ObjectNotFoundError,
    OverloadedError,
    RateLimitedError,
    ServiceError,
    StorageError,
    TooManyImagesError,
    TooManyPixelsError,
    TooManyScansError,
    TooManyUploadsError,
    UnauthorizedError,
    UnknownModelError,
    UnknownOutputFormatError,
    UnsupportedFormatError,
    UploadTooLargeError,
)

HTTP_STATUS: dict[type[ServiceError], HTTPStatus] = {
    MissingFieldError: HTTPStatus.BAD_REQUEST,
    EmptyUploadError: HTTPStatus.BAD_REQUEST,
    UnauthorizedError: HTTPStatus.UNAUTHORIZED,
    RateLimitedError: HTTPStatus.TOO_MANY_REQUESTS,
    KeyFailuresError: HTTPStatus.TOO_MANY_REQUESTS,
    TooManyUploadsError: HTTPStatus.TOO_MANY_REQUESTS,
    BodyTimeoutError: HTTPStatus.REQUEST_TIMEOUT,
    UnknownModelError: HTTPStatus.NOT_FOUND,
    JobNotFoundError: HTTPStatus.NOT_FOUND,
    ObjectNotFoundError: HTTPStatus.NOT_FOUND,
    TooManyPixelsError: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    UploadTooLargeError: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    TooManyImagesError: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    TooManyScansError: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    NotAnImageError: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    UnsupportedFormatError: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    AnimatedImageError: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    CorruptImageError: HTTPStatus.UNPROCESSABLE_ENTITY,
    UnknownOutputFormatError: HTTPStatus.UNPROCESSABLE_ENTITY,
    InvalidWebhookError: HTTPStatus.UNPROCESSABLE_ENTITY,
    StorageError: HTTPStatus.SERVICE_UNAVAILABLE,
    OverloadedError: HTTPStatus.SERVICE_UNAVAILABLE,
    JobsUnavailableError: HTTPStatus.SERVICE_UNAVAILABLE,
}


def status_of(exc: ServiceError) -> HTTPStatus:
    """The status of the nearest class in the table; a refused job answers as its first bad file."""
    if isinstance(exc, InvalidImagesError):
        return status_of(exc.first)
    for cls in type(exc).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return HTTPStatus.INTERNAL_SERVER_ERROR


def error_body(message: str, code: str, request_id: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"success": False, "message": message, "error": code, **extra}
    if request_id:
        body["request_id"] = request_id
    return body


def documented_errors(model: type) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=``: every status in the table, with the codes it answers."""
    codes: dict[int, list[str]] = {}
    for cls, status in HTTP_STATUS.items():
        codes.setdefault(int(status), []).append(cls.code)
    return {
        status: {"model": model, "description": "error: " + ", ".join(sorted(set(names)))}
        for status, names in sorted(codes.items())
    }
