"""The error table: each class carries its code and status; anything unnamed answers as an internal error."""

from __future__ import annotations

from http import HTTPStatus

from deployments.contracts.errors import (
    EmptyUploadError,
    InternalError,
    InvalidImagesError,
    KeyFailuresError,
    NotAnImageError,
    ObjectNotFoundError,
    SpoolFullError,
    as_service_error,
)


def test_a_named_error_answers_for_itself_with_its_class_status() -> None:
    error = SpoolFullError(10)
    assert as_service_error(error) is error
    assert (error.code, error.status) == ("storage_unavailable", HTTPStatus.SERVICE_UNAVAILABLE)
    assert (ObjectNotFoundError("k").status, KeyFailuresError("1/minute").status) == (404, 429)


def test_an_unnamed_exception_is_an_internal_error_that_names_only_its_type() -> None:
    error = as_service_error(KeyError("secret-path"))
    assert isinstance(error, InternalError)
    assert (error.code, error.status) == ("internal_error", HTTPStatus.INTERNAL_SERVER_ERROR)
    assert "KeyError" in error.message and "secret-path" not in error.message


def test_a_refused_job_answers_as_its_first_bad_file_and_lists_every_file() -> None:
    error = InvalidImagesError([(1, "a.txt", NotAnImageError()), (2, "b.png", EmptyUploadError())])
    assert (error.code, error.status) == ("not_an_image", HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
    files = error.details()["files"]
    assert isinstance(files, list)
    assert [(f["index"], f["error"]) for f in files] == [(1, "not_an_image"), (2, "empty_file")]
    assert NotAnImageError().details() == {}
