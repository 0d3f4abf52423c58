from pathlib import Path

import pytest

from configs.settings import Settings, SettingsError, load_settings, redact


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_are_the_original_services() -> None:
    settings = load_settings()
    assert settings.port == 8000 and settings.quality_threshold == 0.5 and settings.upscale_scale == 2
    assert settings.device == "auto" and settings.storage_backend == "local"


def test_environment_and_dotenv_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("UPSCALE_SCALE=4\nS3_BUCKET=my-bucket\n")
    monkeypatch.setenv("QUALITY_THRESHOLD", "0.25")
    settings = load_settings()
    assert settings.upscale_scale == 4 and settings.quality_threshold == 0.25
    assert settings.s3_bucket == "my-bucket" and settings.storage_backend == "s3"


def test_auto_scale_is_read_from_text_and_refuses_a_fixed_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSCALE_SCALE", " Auto ")
    assert load_settings().upscale_scale == "auto" and load_settings().scales == (2, 4)
    assert load_settings(upscale_scale=4).scales == (4,)
    with pytest.raises(SettingsError, match=r"UPSCALE_SCALE=auto picks a bundled model per image.*unset MODEL_NAME"):
        load_settings(model_name="vcsr-s-x2")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("QUALITY_THRESHOLD", "1.5", "QUALITY_THRESHOLD=1.5: invalid, expected a number in [0, 1]"),
        ("QUALITY_THRESHOLD", "-0.1", "QUALITY_THRESHOLD=-0.1: invalid, expected a number in [0, 1]"),
        ("UPSCALE_SCALE", "3", "UPSCALE_SCALE=3: invalid, expected 2, 4 or auto"),
        ("DEVICE", "tpu", "DEVICE=tpu: invalid, expected auto, cpu or cuda"),
        ("PORT", "http", "PORT=http: invalid, expected an integer port"),
        ("S3_BUCKET", "Bad_Bucket", "S3_BUCKET=Bad_Bucket: invalid, expected an S3 bucket name"),
        ("S3_ENDPOINT_URL", "localhost:9000", "S3_ENDPOINT_URL=localhost:9000: invalid, expected an http(s)://"),
        ("MAX_UPLOAD_BYTES", "0", "MAX_UPLOAD_BYTES=0: invalid, expected a positive number of bytes"),
    ],
)
def test_errors_name_the_variable_the_value_and_what_is_allowed(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert expected in str(caught.value)


def test_all_bad_variables_are_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSCALE_SCALE", "8")
    monkeypatch.setenv("DEVICE", "gpu")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "UPSCALE_SCALE=8" in message and "DEVICE=gpu" in message


def test_empty_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_BUCKET", "")
    monkeypatch.setenv("MODEL_PATH", " ")
    settings = load_settings()
    assert settings.s3_bucket is None and settings.model_path is None


def test_upscaler_service_url_is_accepted_with_a_deprecation_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSCALER_SERVICE_URL", "http://upscaler:8001")
    with pytest.warns(DeprecationWarning, match="no meaning on Ray Serve"):
        load_settings()


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSCALE_SCALE", "4")
    assert load_settings(upscale_scale=2).upscale_scale == 2


def test_an_override_that_names_no_setting_fails_with_the_closest_name() -> None:
    with pytest.raises(SettingsError, match="quality_treshold: not a setting; did you mean quality_threshold"):
        load_settings(quality_treshold=0.9)


def test_overrides_take_any_setting_and_refuse_unknown_keys() -> None:
    from pydantic import ValidationError

    from configs.settings import SettingsOverrides

    overrides = SettingsOverrides.model_validate({"upscale_scale": 4, "device": "cpu"})
    assert load_settings(**overrides.as_dict()).upscale_scale == 4
    with pytest.raises(ValidationError, match="proxy_locaton: not a setting"):
        SettingsOverrides.model_validate({"proxy_locaton": "EveryNode"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RATE_LIMIT_STORAGE_URL", "http://:hunter2@cache:6379/0"),  # not a store the limiter knows
        ("S3_ENDPOINT_URL", "ftp://minio:hunter2@storage:9000"),  # not http(s)
        ("JOBS_BROKER_URL", "amqp://guest:hunter2@rabbit:5672//"),  # not Redis
    ],
)
def test_a_bad_url_setting_never_echoes_its_credentials(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert name in message and "hunter2" not in message


def test_a_bad_url_setting_still_shows_its_host() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(rate_limit_storage_url="http://user:hunter2@cache:6379/0")
    assert "RATE_LIMIT_STORAGE_URL=http://***@cache:6379/0" in str(caught.value)


def test_settings_repr_redacts_url_credentials() -> None:
    settings = load_settings(
        rate_limit_storage_url="redis://:hunter2@cache:6379/0", s3_endpoint_url="http://k:hunter2@s3"
    )
    shown = repr(settings)
    assert "hunter2" not in shown and "redis://***@cache:6379/0" in shown


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("redis://:hunter2@cache:6379/0", "redis://***@cache:6379/0"),
        ("rediss://user:pw@a, then http://b@c/x?y=z@w", "rediss://***@a, then http://***@c/x?y=z@w"),
        ("http://host:9000/path", "http://host:9000/path"),
        ("no url here@all", "no url here@all"),
    ],
)
def test_redact_replaces_only_the_user_information_of_urls(text: str, expected: str) -> None:
    assert redact(text) == expected
