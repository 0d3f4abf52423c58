"""Settings of the jobs API that depend on each other or on the upload parser: a finished job's record
outlives its webhook's last attempt, and a job never holds more files than one request can carry."""

from __future__ import annotations

import inspect

import pytest
from starlette.requests import Request

from configs.settings import MULTIPART_MAX_FILES, SettingsError, load_settings, webhook_last_attempt_s


def test_a_retention_shorter_than_the_webhook_schedule_is_refused() -> None:
    # Attempt 11 comes ~5,119 s after the job ended: an hour's retention would drop it silently.
    with pytest.raises(SettingsError) as caught:
        load_settings(webhook_max_attempts=11, jobs_retention_s=3600)
    message = str(caught.value)
    assert "JOBS_RETENTION_S=3600 is shorter than the webhook schedule" in message
    assert "WEBHOOK_MAX_ATTEMPTS=11" in message and "at least 5825" in message


@pytest.mark.parametrize(
    ("attempts", "timeout_s", "retention_s"), [(8, 10, 3600), (11, 10, 5825), (20, 60, 7 * 24 * 3600)]
)
def test_a_retention_that_outlives_the_schedule_is_accepted(attempts: int, timeout_s: float, retention_s: int) -> None:
    settings = load_settings(webhook_max_attempts=attempts, webhook_timeout_s=timeout_s, jobs_retention_s=retention_s)
    assert settings.jobs_retention_s >= webhook_last_attempt_s(attempts, timeout_s)


def test_the_schedule_is_the_backoff_at_its_longest_plus_each_attempts_deadline() -> None:
    assert webhook_last_attempt_s(1, 10) == 0
    assert webhook_last_attempt_s(3, 10) == (5 + 1) + (10 + 1) + 2 * 10
    assert webhook_last_attempt_s(12, 0) == 5 * (2**10 - 1) + 10 + 3600  # waits are capped at an hour


def test_more_images_per_job_than_the_parser_accepts_is_refused() -> None:
    with pytest.raises(SettingsError, match="MAX_JOB_IMAGES=1001: .*1001 is more than the 1000 files"):
        load_settings(max_job_images=1001)
    assert load_settings(max_job_images=1000).max_job_images == 1000


def test_the_parser_limit_is_starlettes() -> None:
    # POST /api/jobs parses its files with Request.form's defaults (FastAPI passes no form limits).
    assert inspect.signature(Request.form).parameters["max_files"].default == MULTIPART_MAX_FILES
