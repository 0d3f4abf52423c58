"""The one error table of the service: one class per error, each carrying its stable ``code`` and its
HTTP ``status`` as class attributes, and a message that names the fix.

They are raised below HTTP (the flow, storage, the upscaler, the jobs consumer) and at the door. Every
door answers through the same lookup, by class, as Starlette's exception middleware finds a handler:
``as_service_error`` turns anything raised into one of these (an unnamed exception is an
``InternalError``); the ingress answers with its ``status`` and ``code`` (``deployments/ingress/errors.py``,
whose OpenAPI list of error responses walks these classes), and the jobs consumer records an item's
failure as ``{"code", "message"}`` from the same attributes.
"""

from __future__ import annotations

from http import HTTPStatus

from configs import formats

ALLOWED_TEXT = formats.inputs_text()


class ServiceError(Exception):
    """Base of every named error: ``code`` is stable (clients match on it), ``message`` is for people,
    ``status`` is the HTTP answer. A subclass inherits both until it declares its own."""

    code = "error"
    status = HTTPStatus.INTERNAL_SERVER_ERROR
    retry_after_s: int | None = None  # when set, the client is told to retry after this many seconds

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def headers(self) -> dict[str, str]:
        """HTTP headers the refusal carries (``Retry-After`` when the client should come back)."""
        return {"Retry-After": str(self.retry_after_s)} if self.retry_after_s else {}

    def details(self) -> dict[str, object]:
        """Fields the refusal's JSON body carries beside ``message`` and ``error`` (none by default)."""
        return {}


class InternalError(ServiceError):
    """An exception that is not a named error: a bug or a failure nobody named. Nothing was stored."""

    code = "internal_error"

    def __init__(self, exc: BaseException) -> None:
        super().__init__(f"Internal error ({type(exc).__name__}); nothing was stored.")


def as_service_error(exc: BaseException) -> ServiceError:
    """The named error that answers for ``exc``: itself, or an ``InternalError`` for an unnamed one."""
    return exc if isinstance(exc, ServiceError) else InternalError(exc)


class InvalidParameterError(ServiceError):
    """A query or path parameter is out of range or of the wrong type."""

    code = "invalid_parameter"
    status = HTTPStatus.UNPROCESSABLE_ENTITY


class UploadRejectedError(ServiceError):
    """The request is refused as sent; nothing was stored."""

    code = "rejected"


class MalformedRequestError(UploadRejectedError):
    """The body cannot be parsed as it claims to be (a broken multipart body): 400, the only refusal
    that is not about a field's value."""

    code = "bad_request"
    status = HTTPStatus.BAD_REQUEST


class MissingFieldError(UploadRejectedError):
    """A required multipart field is absent (or the body is not multipart at all): the OpenAPI schema
    marks the file field required, so the answer is the schema's 422 like every other invalid field."""

    code = "missing_field"
    status = HTTPStatus.UNPROCESSABLE_ENTITY

    def __init__(self, field: str = "image") -> None:
        super().__init__(f"No file found: send the image as multipart/form-data in a field named {field!r}.")


class EmptyUploadError(UploadRejectedError):
    """An empty file: a well-formed request whose field holds no image (422, like a missing one)."""

    code = "empty_file"
    status = HTTPStatus.UNPROCESSABLE_ENTITY

    def __init__(self) -> None:
        super().__init__("The uploaded file is empty.")


class NotAnImageError(UploadRejectedError):
    code = "not_an_image"
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE

    def __init__(self) -> None:
        super().__init__(f"The uploaded file is not an image; send a {ALLOWED_TEXT} file.")


class UnsupportedFormatError(UploadRejectedError):
    code = "unsupported_format"
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE

    def __init__(self, fmt: str) -> None:
        super().__init__(f"{fmt} images are not supported; send a {ALLOWED_TEXT} file.")
        self.format = fmt


class AnimatedImageError(UploadRejectedError):
    code = "animated_image"
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE

    def __init__(self, fmt: str) -> None:
        super().__init__(f"Animated {fmt} images are not supported; send a single still image.")


class CorruptImageError(UploadRejectedError):
    code = "corrupt_image"
    status = HTTPStatus.UNPROCESSABLE_ENTITY

    def __init__(self, reason: str) -> None:
        super().__init__(f"The image is damaged or truncated and cannot be decoded ({reason}).")
        self.reason = reason


class TooManyPixelsError(UploadRejectedError):
    code = "too_many_pixels"
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE

    def __init__(self, size: tuple[int, int] | None, limit: int) -> None:
        declared = f"{size[0]}×{size[1]} pixels" if size else "more pixels than allowed"
        super().__init__(
            f"The image declares {declared}; at most {limit:,} pixels are accepted "
            "(this also stops decompression bombs)."
        )
        self.size, self.limit = size, limit


class TooManyScansError(UploadRejectedError):
    code = "too_many_scans"
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE

    def __init__(self, limit: int | str) -> None:
        super().__init__(
            f"The JPEG holds more than {limit} scans, more than any encoder writes (a decoding bomb); "
            "re-encode it as a baseline or standard progressive JPEG."
        )


class UploadTooLargeError(UploadRejectedError):
    code = "upload_too_large"
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE

    def __init__(self, limit: int) -> None:
        super().__init__(f"The upload exceeds the limit of {limit:,} bytes (MAX_UPLOAD_BYTES).")
        self.limit = limit


class UnauthorizedError(UploadRejectedError):
    code = "unauthorized"
    status = HTTPStatus.UNAUTHORIZED

    def __init__(self) -> None:
        super().__init__("A valid API key is required in the X-API-Key header.")


class RateLimitedError(UploadRejectedError):
    code = "rate_limited"
    status = HTTPStatus.TOO_MANY_REQUESTS

    def __init__(self, limit: str, retry_after_s: int = 1, rate_headers: dict[str, str] | None = None) -> None:
        super().__init__(f"Too many requests for this key (RATE_LIMIT {limit}); retry in {retry_after_s} s.")
        self.retry_after_s = retry_after_s
        self.rate_headers = rate_headers or {}

    def headers(self) -> dict[str, str]:
        return {**super().headers(), **self.rate_headers}


class KeyFailuresError(RateLimitedError):
    """Too many wrong API keys from one client address: refused before the key is even hashed."""

    def __init__(self, limit: str, retry_after_s: int = 1) -> None:
        UploadRejectedError.__init__(
            self,
            f"Too many wrong API keys from this address (AUTH_FAILURE_LIMIT {limit}); "
            f"retry in {retry_after_s} s with a valid key.",
        )
        self.retry_after_s = retry_after_s
        self.rate_headers = {}


class TooManyUploadsError(UploadRejectedError):
    """This client address already has its share of uploads in flight; nothing was read or stored."""

    code = "too_many_uploads"
    status = HTTPStatus.TOO_MANY_REQUESTS
    retry_after_s = 5

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"This client already has {limit} uploads in flight (MAX_UPLOADS_PER_CLIENT); "
            "wait for one to finish and retry."
        )
        self.limit = limit


class BodyTimeoutError(UploadRejectedError):
    """The request body did not arrive within BODY_TIMEOUT_S; nothing was stored."""

    code = "request_timeout"
    status = HTTPStatus.REQUEST_TIMEOUT

    def __init__(self, timeout_s: float | str) -> None:
        super().__init__(
            f"The request body was not received within {timeout_s} s (BODY_TIMEOUT_S); nothing was stored, "
            "send it again on a faster connection."
        )
        self.timeout_s = timeout_s


class UnknownModelError(UploadRejectedError):
    """The ``model`` field names no registered model: an invalid field like any other (422), not a
    missing resource (the route exists and answers)."""

    code = "unknown_model"
    status = HTTPStatus.UNPROCESSABLE_ENTITY

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"Unknown model {name!r}; available models: {', '.join(known)}.")
        self.name, self.known = name, known


class UnknownOutputFormatError(UploadRejectedError):
    code = "unknown_format"
    status = HTTPStatus.UNPROCESSABLE_ENTITY

    def __init__(self, fmt: str, known: tuple[str, ...]) -> None:
        super().__init__(f"Unknown output format {fmt!r}; choose one of: {', '.join(known)}.")


class TooManyImagesError(UploadRejectedError):
    code = "too_many_images"
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"A job takes at most {limit} images (MAX_JOB_IMAGES); {count} were sent.")


class InvalidWebhookError(UploadRejectedError):
    code = "invalid_webhook_url"
    status = HTTPStatus.UNPROCESSABLE_ENTITY

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"webhook_url {url[:200]!r} is not allowed: {reason}.")


class InvalidImagesError(UploadRejectedError):
    """Some files of a job are not acceptable: the job is refused whole. ``code`` and ``status`` are the
    first bad file's, so a one-file job is refused exactly as the upload route would refuse it; the body
    lists every refused file."""

    def __init__(self, failures: list[tuple[int, str, UploadRejectedError]]) -> None:
        listed = "; ".join(f"#{i} {name!r}: {error.message}" for i, name, error in failures)
        super().__init__(f"{len(failures)} file(s) refused, nothing was stored and no job was created: {listed}")
        self.failures = failures
        self.first = failures[0][2]

    # Read-only on purpose: the class attributes of the base are only ever read, and this error has no
    # code or status of its own (mypy's rule guards writes, which nothing does).
    @property
    def code(self) -> str:  # type: ignore[override]
        return self.first.code

    @property
    def status(self) -> HTTPStatus:  # type: ignore[override]
        return self.first.status

    def details(self) -> dict[str, object]:
        files = [{"index": i, "filename": name, "error": e.code, "message": e.message} for i, name, e in self.failures]
        return {"files": files}


class IdempotencyKeyReusedError(UploadRejectedError):
    """An Idempotency-Key already used (by this API key, on this route, within a day) with another body."""

    code = "idempotency_key_reused"
    status = HTTPStatus.UNPROCESSABLE_ENTITY

    def __init__(self) -> None:
        super().__init__(
            "This Idempotency-Key was used with another request body in the last 24 hours; "
            "send a new key for a new request."
        )


class IdempotencyKeyInFlightError(UploadRejectedError):
    """The first request with this Idempotency-Key is still running: retry to get its answer."""

    code = "idempotency_key_in_flight"
    status = HTTPStatus.CONFLICT
    retry_after_s = 1

    def __init__(self) -> None:
        super().__init__("A request with this Idempotency-Key is still being processed; retry to get its answer.")


class IdempotencyUnavailableError(ServiceError):
    """The store of idempotency keys (the broker's Redis) does not answer: nothing ran, retry later."""

    code = "idempotency_unavailable"
    status = HTTPStatus.SERVICE_UNAVAILABLE
    retry_after_s = 5

    def __init__(self, reason: str) -> None:
        super().__init__(f"Idempotency keys cannot be checked now ({reason}); nothing was done, retry later.")


class JobNotFoundError(ServiceError):
    code = "job_not_found"
    status = HTTPStatus.NOT_FOUND

    def __init__(self, job_id: str) -> None:
        super().__init__(f"No job {job_id[:80]!r}; job ids come from POST /api/jobs.")


class JobsUnavailableError(ServiceError):
    code = "jobs_unavailable"
    status = HTTPStatus.SERVICE_UNAVAILABLE

    def __init__(self, reason: str) -> None:
        super().__init__(f"The jobs queue is unavailable, no job was created; retry later ({reason}).")


class OverloadedError(ServiceError):
    """Every queue that could take the work is full; nothing was stored. A retry later succeeds."""

    code = "overloaded"
    status = HTTPStatus.SERVICE_UNAVAILABLE
    retry_after_s = 5

    def __init__(self, message: str = "The service is at capacity; nothing was stored, retry later.") -> None:
        super().__init__(message)


class StorageError(ServiceError, RuntimeError):
    """The object could not be stored; nothing partial was left behind."""

    code = "storage_unavailable"
    status = HTTPStatus.SERVICE_UNAVAILABLE
    retry_after_s = 30


class StorageUnreachableError(StorageError):
    """The bucket did not answer (connection refused, timeout, 5xx, throttling): a transient failure
    that the spool absorbs. The message never names the endpoint or the bucket."""


class StorageRefusedError(StorageError):
    """The bucket answered and refused the request for good (a 4xx that is not throttling: access
    denied, no such bucket, a bad request): sending the same request again cannot succeed."""


class SpoolFullError(StorageError):
    retry_after_s = 60

    def __init__(self, limit: int | str) -> None:  # (a str when Ray unpickles it from its message)
        super().__init__(
            f"The storage bucket is unreachable and the local spool is full ({limit} bytes, SPOOL_MAX_BYTES); "
            "nothing was stored, retry later."
        )
        self.limit = limit


class StorageConflictError(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"a different object already exists at {key!r}")
        self.key = key


class ObjectNotFoundError(StorageError):
    """No stored result under this key (or a key that names no result: job inputs, paths that escape)."""

    code = "object_not_found"
    status = HTTPStatus.NOT_FOUND

    def __init__(self, key: str) -> None:
        super().__init__(f"No stored object {key[:200]!r}; keys come from an upload's result.")
        self.key = key


class UpscaleError(ServiceError, RuntimeError):
    """Upscaling this image failed; the original goes to ``couldn't_upscale/``."""

    code = "upscale_failed"


class UpscaleDeadlineError(UpscaleError):
    """Upscaling took longer than UPSCALE_TIMEOUT_S; the original goes to ``couldn't_upscale/``."""

    code = "upscale_timeout"

    def __init__(self, timeout_s: float | str) -> None:
        super().__init__(f"upscaling took longer than UPSCALE_TIMEOUT_S={timeout_s} s")
