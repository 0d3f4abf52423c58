"""Why an upload is refused, and the one table that maps each reason to an HTTP status.

Every refusal is answered as ``{"success": false, "message": …, "error": <code>}`` with nothing stored.
"""

from __future__ import annotations

from http import HTTPStatus

ALLOWED_TEXT = "JPEG, PNG or WebP"


class UploadRejectedError(Exception):
    code = "rejected"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MissingFieldError(UploadRejectedError):
    code = "missing_field"

    def __init__(self, field: str = "image") -> None:
        super().__init__(f"No file found: send the image as multipart/form-data in a field named {field!r}.")


class EmptyUploadError(UploadRejectedError):
    code = "empty_file"

    def __init__(self) -> None:
        super().__init__("The uploaded file is empty.")


class NotAnImageError(UploadRejectedError):
    code = "not_an_image"

    def __init__(self) -> None:
        super().__init__(f"The uploaded file is not an image; send a {ALLOWED_TEXT} file.")


class UnsupportedFormatError(UploadRejectedError):
    code = "unsupported_format"

    def __init__(self, fmt: str) -> None:
        super().__init__(f"{fmt} images are not supported; send a {ALLOWED_TEXT} file.")
        self.format = fmt


class AnimatedImageError(UploadRejectedError):
    code = "animated_image"

    def __init__(self, fmt: str) -> None:
        super().__init__(f"Animated {fmt} images are not supported; send a single still image.")


class CorruptImageError(UploadRejectedError):
    code = "corrupt_image"

    def __init__(self, reason: str) -> None:
        super().__init__(f"The image is damaged or truncated and cannot be decoded ({reason}).")
        self.reason = reason


class TooManyPixelsError(UploadRejectedError):
    code = "too_many_pixels"

    def __init__(self, size: tuple[int, int] | None, limit: int) -> None:
        declared = f"{size[0]}×{size[1]} pixels" if size else "more pixels than allowed"
        super().__init__(
            f"The image declares {declared}; at most {limit:,} pixels are accepted "
            "(this also stops decompression bombs)."
        )
        self.size, self.limit = size, limit


class UploadTooLargeError(UploadRejectedError):
    code = "upload_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"The upload exceeds the limit of {limit:,} bytes (MAX_UPLOAD_BYTES).")
        self.limit = limit


class UnauthorizedError(UploadRejectedError):
    code = "unauthorized"

    def __init__(self) -> None:
        super().__init__("A valid API key is required in the X-API-Key header.")


class UnknownModelError(UploadRejectedError):
    code = "unknown_model"

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"Unknown model {name!r}; available models: {', '.join(known)}.")
        self.name, self.known = name, known


class UnknownOutputFormatError(UploadRejectedError):
    code = "unknown_format"

    def __init__(self, fmt: str, known: tuple[str, ...]) -> None:
        super().__init__(f"Unknown output format {fmt!r}; choose one of: {', '.join(known)}.")


HTTP_STATUS: dict[type[UploadRejectedError], HTTPStatus] = {
    MissingFieldError: HTTPStatus.BAD_REQUEST,
    EmptyUploadError: HTTPStatus.BAD_REQUEST,
    NotAnImageError: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    UnsupportedFormatError: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    AnimatedImageError: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    CorruptImageError: HTTPStatus.UNPROCESSABLE_ENTITY,
    TooManyPixelsError: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    UploadTooLargeError: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    UnauthorizedError: HTTPStatus.UNAUTHORIZED,
    UnknownModelError: HTTPStatus.NOT_FOUND,
    UnknownOutputFormatError: HTTPStatus.UNPROCESSABLE_ENTITY,
}


def status_of(exc: UploadRejectedError) -> HTTPStatus:
    return HTTP_STATUS.get(type(exc), HTTPStatus.BAD_REQUEST)


def error_body(message: str, code: str, request_id: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {"success": False, "message": message, "error": code}
    if request_id:
        body["request_id"] = request_id
    return body
