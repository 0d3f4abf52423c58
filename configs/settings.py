"""Service settings from the environment and ``.env``, validated once at start-up.

The variable names of the original service are kept (PORT, AWS_REGION, S3_BUCKET, QUALITY_THRESHOLD,
UPSCALE_SCALE, MODEL_PATH, DEVICE); AWS credentials come from boto3's default chain, never from here.
This is the only module that reads ``os.environ``. ``load_settings`` turns pydantic's errors into one
message per bad variable that names the variable, the value given and what would be accepted.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import warnings
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from configs import formats

REPO_ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
LIMIT_PATTERN = (
    r"^\s*\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day)s?\s*([;,]\s*\d+\s*(/|per)\s*(\d+\s*)?"
    r"(second|minute|hour|day)s?\s*)*$"
)
SECRET_FIELDS = ("api_key", "api_keys", "jobs_broker_url", "webhook_secret")  # never echoed in errors
# The webhooks' retry schedule (deployments/jobs/webhooks.py builds its backoff from these): attempt n + 1
# comes min(5 · 2^(n-1) + up to 1, 3600) seconds after attempt n.
WEBHOOK_BACKOFF_FIRST_S = 5.0
WEBHOOK_BACKOFF_JITTER_S = 1.0
WEBHOOK_BACKOFF_MAX_S = 3600.0
# Room for a replica that died holding a delivery (its 120-s lease) and the poller's period.
WEBHOOK_RETENTION_MARGIN_S = 600.0
# Files one multipart request may carry: Starlette's Request.form default, which FastAPI's File() routes
# use (POST /api/jobs sets no other limit). More files fail as a 400 before the route sees them.
MULTIPART_MAX_FILES = 1000


def webhook_last_attempt_s(max_attempts: int, timeout_s: float) -> float:
    """The latest a job's last webhook attempt can start after the job ended: every wait at its longest
    (full jitter) plus every earlier attempt using its whole deadline."""
    waits = (
        min(WEBHOOK_BACKOFF_FIRST_S * 2 ** (n - 1) + WEBHOOK_BACKOFF_JITTER_S, WEBHOOK_BACKOFF_MAX_S)
        for n in range(1, max_attempts)
    )
    return float(sum(waits)) + (max_attempts - 1) * timeout_s


# The user-information part of a URL (``scheme://user:password@``): where URLs carry credentials.
_USERINFO = re.compile(r"(?<=//)[^/?#@\s]*@")


def redact(text: str) -> str:
    """``text`` with the user and password of every URL in it replaced by ``***``
    (``redis://:hunter2@cache:6379/0`` → ``redis://***@cache:6379/0``). The one helper that every
    setting error and every log line naming a URL goes through: a URL setting (``RATE_LIMIT_STORAGE_URL``,
    ``S3_ENDPOINT_URL``, ``JOBS_BROKER_URL``, …) may hold credentials, and a setting error or a log line
    is read by more people than the secret is meant for. The host stays, so the message is still useful."""
    return _USERINFO.sub("***@", text)


class SettingsError(ValueError):
    """Raised with every invalid variable listed as ``NAME=value: what is allowed``."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True)

    port: int = Field(8000, ge=1, le=65535, description="an integer port in 1..65535")
    aws_region: str = Field("us-east-1", min_length=1, description="an AWS region name such as eu-west-1")
    s3_bucket: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$",
        description="an S3 bucket name (3-63 lowercase letters, digits, '.', '-'), or unset for local storage",
    )
    s3_endpoint_url: str | None = Field(
        None, pattern=r"^https?://[^\s/]+(/.*)?$", description="an http(s):// URL of an S3-compatible endpoint"
    )
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field("auto", description="auto, path or virtual")
    storage_dir: Path = Field(REPO_ROOT / "data" / "storage", description="a folder for local storage")
    quality_threshold: float = Field(0.5, ge=0.0, le=1.0, description="a number in [0, 1]")
    # auto: per image, the smallest bundled scale that lifts the resolution score to QUALITY_THRESHOLD.
    upscale_scale: Literal[2, 4, "auto"] = Field(2, description="2, 4 or auto")
    model_name: str | None = Field(
        None, description="a registered model name (default: the bundled model for UPSCALE_SCALE)"
    )
    model_registry: Path = Field(
        REPO_ROOT / "configs" / "models.yaml", description="a YAML file listing extra models by name and path"
    )
    model_path: Path | None = Field(None, description="a model file (ours or any spandrel-supported) to serve instead")
    quality_policy: Path = Field(
        REPO_ROOT / "configs" / "quality_policy.yaml",
        description="a YAML file of quality-policy rules (configs/quality_policy.py)",
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto, cpu or cuda")
    precision: Literal["auto", "fp32", "bf16", "fp16", "int8"] = Field(
        "auto",
        description="auto (reduced precision only where measured harmless and fast: int8 on CPUs with VNNI, "
        "else bf16/fp16), fp32, bf16, fp16 or int8 (CPU, bundled models with a measured int8 build)",
    )
    max_upload_bytes: int = Field(50 * MIB, ge=1, description="a positive number of bytes")
    max_image_pixels: int = Field(
        50_000_000, ge=1, description="a positive number of pixels (decompression-bomb limit)"
    )
    max_upscale_pixels: int = Field(
        3840 * 2160, ge=1, description="a positive number of input pixels; larger images are not upscaled"
    )
    output_format: str = Field(formats.FALLBACK.name, description=formats.outputs_text())
    png_compress_level: int = Field(1, ge=0, le=9, description="an integer in 0..9")
    api_key: SecretStr | None = Field(None, min_length=16, description="a secret of at least 16 characters, or unset")
    upscaler_service_url: str | None = Field(None, description="ignored on Ray Serve (deprecated)")
    # Batch jobs (POST /api/jobs): the broker, the embedded broker's folder, limits and webhooks.
    jobs_broker_url: SecretStr | None = Field(
        None,
        description="a redis:// or rediss:// URL of the jobs broker, or unset for the embedded one under JOBS_DIR",
    )
    jobs_dir: Path = Field(REPO_ROOT / "data" / "jobs", description="a folder for the embedded broker's files")
    max_job_images: int = Field(
        100, ge=1, description=f"an integer in 1..{MULTIPART_MAX_FILES} (images per job; the upload parser's limit)"
    )
    jobs_visibility_timeout_s: float = Field(
        300.0,
        ge=5,
        description="seconds (≥ 5) after which an item taken by a consumer that died is handed out again; "
        "longer than any item takes",
    )
    jobs_retention_s: int = Field(
        7 * 24 * 3600,
        ge=3600,
        description="seconds (≥ 3600, and past the webhook's last attempt) a finished job's record stays readable",
    )
    webhook_secret: SecretStr | None = Field(
        None, min_length=16, description="a signing secret of at least 16 characters (whsec_<base64> or text)"
    )
    webhook_max_attempts: int = Field(8, ge=1, le=20, description="an integer in 1..20")
    webhook_timeout_s: float = Field(10.0, gt=0, le=60, description="seconds in (0, 60]")
    webhook_allowed_hosts: str = Field(
        "", description="comma-separated host names or IPs webhooks may reach even when private or loopback"
    )
    # Reliability and access (issue 9).
    spool_dir: Path = Field(
        REPO_ROOT / "data" / "spool",
        description="a local folder where objects wait while the S3 bucket is unreachable (per node, durable)",
    )
    spool_max_bytes: int = Field(
        2 * 1024 * MIB, ge=0, description="a number of bytes; past it uploads get 503 while S3 is unreachable"
    )
    upscale_timeout_s: float = Field(
        180.0, gt=0, description="seconds; a longer upscale stores the original in couldn't_upscale/"
    )
    max_concurrent_decodes: int = Field(
        2, ge=1, description="a positive number of full image decodes at once per ingress replica"
    )
    max_concurrent_uploads: int = Field(
        24,
        ge=1,
        description="a positive number of uploads one ingress replica takes at once (more: 503 with Retry-After); "
        "keep it below the Ingress's max_ongoing_requests so health always answers",
    )
    api_keys: SecretStr | None = Field(
        None, description="comma-separated API keys, each at least 16 characters (X-API-Key), or unset"
    )
    api_keys_file: Path | None = Field(
        None, description="a file with one salted key hash per line (python -m deployments.ingress.api_keys), or unset"
    )
    rate_limit: str | None = Field(
        None,
        pattern=LIMIT_PATTERN,
        description="requests per key (per client address without keys), e.g. 60/minute or 10/second;1000/hour",
    )
    rate_limit_storage_url: str | None = Field(
        None,
        pattern=r"^(memory|redis|rediss|redis\+unix|redis\+sentinel|redis\+cluster)://",
        description="where rate-limit and key-failure counters live: redis://… shared by every ingress replica "
        "(default: the jobs broker's Redis, the embedded one's socket included; memory:// is per replica)",
    )
    auth_failure_limit: str = Field(
        "10/minute",
        pattern=LIMIT_PATTERN,
        description="wrong API keys one client address may send, e.g. 10/minute; past it 429 before any hashing",
    )
    max_uploads_per_client: int = Field(
        8, ge=1, description="a positive number of uploads one client address may have in flight per ingress replica"
    )
    body_timeout_s: float = Field(
        60.0, gt=0, description="seconds (> 0) an upload's whole body may take to arrive; past it 408"
    )
    trusted_proxies: str = Field(
        "",
        description="comma-separated IPs or CIDRs of reverse proxies whose X-Forwarded-For names the client "
        "(default: none, the peer is the client)",
    )
    cors_allow_origins: str | None = Field(
        None, description="comma-separated origins allowed to call the API from a browser (default: none)"
    )
    stats_cache_s: float = Field(
        2.0,
        ge=0,
        le=60,
        description="seconds in [0, 60] one /api/stats answer is reused per ingress replica (0: never)",
    )
    health_cache_s: float = Field(
        2.0,
        ge=0,
        le=30,
        description="seconds in [0, 30] a health probe is reused (per ingress replica for /api/health, per "
        "storage replica for the bucket HEAD and spool write); a failure shows within about twice that",
    )
    dashboard_host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="an address for the dashboard of the local Ray `python -m serve_app serve` starts: 127.0.0.1 "
        "(this machine only; Ray's default) or 0.0.0.0 (every interface: the image's, for its published port)",
    )
    keep_gps: bool = Field(
        False,
        description="true or false: keep the EXIF GPS position in upscaled outputs (default false: it is "
        "dropped; an original stored as uploaded is never changed)",
    )

    def __repr_args__(self) -> Any:
        """``repr(settings)`` (in a log line or a traceback) with the credentials of URL settings redacted."""
        for name, value in super().__repr_args__():
            yield name, redact(value) if isinstance(value, str) else value

    @field_validator(
        "s3_bucket",
        "s3_endpoint_url",
        "model_name",
        "model_path",
        "api_key",
        "jobs_broker_url",
        "webhook_secret",
        "api_keys",
        "api_keys_file",
        "rate_limit",
        "rate_limit_storage_url",
        "cors_allow_origins",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("upscale_scale", mode="before")
    @classmethod
    def _scale_from_text(cls, value: Any) -> Any:
        # .env values arrive as text, and a Literal of ints does not coerce "4".
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("output_format")
    @classmethod
    def _an_output_format(cls, value: str) -> str:
        if value not in formats.output_names():
            raise ValueError(f"{value!r} is not an output format; choose {formats.outputs_text()}")
        return value

    @field_validator("api_keys")
    @classmethod
    def _keys_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and any(len(k) < 16 for k in value.get_secret_value().split(",")):
            raise ValueError("every key must be at least 16 characters")  # never echo the keys
        return value

    @field_validator("api_keys_file")
    @classmethod
    def _keys_file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("the file does not exist")
        return value

    @property
    def api_key_list(self) -> list[str]:
        """Every plain-text key (API_KEY and API_KEYS); the builder turns them into salted hashes."""
        keys = [self.api_key.get_secret_value()] if self.api_key else []
        if self.api_keys:
            keys += [k.strip() for k in self.api_keys.get_secret_value().split(",") if k.strip()]
        return keys

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for entry in (e.strip() for e in value.split(",")):
            if entry:
                ipaddress.ip_network(entry, strict=False)  # ValueError names the entry
        return value

    @property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        entries = (e.strip() for e in self.trusted_proxies.split(","))
        return tuple(ipaddress.ip_network(e, strict=False) for e in entries if e)

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip() for o in (self.cors_allow_origins or "").split(",") if o.strip()]

    @model_validator(mode="after")
    def _auto_scale_uses_the_bundled_models(self) -> Settings:
        if self.upscale_scale == "auto" and (self.model_name or self.model_path):
            raise ValueError(
                "UPSCALE_SCALE=auto picks a bundled model per image (vcsr-m-x2/x4, vcsr-real-x2/x4): unset "
                "MODEL_NAME and MODEL_PATH, or set UPSCALE_SCALE to the chosen model's scale"
            )
        return self

    @property
    def scales(self) -> tuple[int, ...]:
        """The scales uploads are upscaled at: ``UPSCALE_SCALE``, or with auto every bundled one."""
        return (2, 4) if self.upscale_scale == "auto" else (self.upscale_scale,)

    @model_validator(mode="after")
    def _warn_deprecated(self) -> Settings:
        if self.upscaler_service_url is not None:
            warnings.warn(
                "UPSCALER_SERVICE_URL has no meaning on Ray Serve (the upscaler is a deployment in the same "
                "application) and is ignored",
                DeprecationWarning,
                stacklevel=2,
            )
        return self

    @field_validator("max_job_images", mode="after")
    @classmethod
    def _within_the_parser(cls, value: int) -> int:
        if value > MULTIPART_MAX_FILES:
            raise ValueError(
                f"{value} is more than the {MULTIPART_MAX_FILES} files the upload parser accepts in one request "
                "(a larger job would fail as a 400 before it is read)"
            )
        return value

    @model_validator(mode="after")
    def _retention_outlives_the_webhooks(self) -> Settings:
        last = webhook_last_attempt_s(self.webhook_max_attempts, self.webhook_timeout_s)
        needed = last + WEBHOOK_RETENTION_MARGIN_S
        if self.jobs_retention_s < needed:
            raise ValueError(
                f"JOBS_RETENTION_S={self.jobs_retention_s} is shorter than the webhook schedule: with "
                f"WEBHOOK_MAX_ATTEMPTS={self.webhook_max_attempts} and WEBHOOK_TIMEOUT_S={self.webhook_timeout_s:g} "
                f"the last attempt may start {last:,.0f} s after a job ends, and its record must still exist then "
                f"(+{WEBHOOK_RETENTION_MARGIN_S:.0f} s margin); set JOBS_RETENTION_S to at least {needed:.0f} "
                "or lower WEBHOOK_MAX_ATTEMPTS"
            )
        return self

    @field_validator("jobs_broker_url", mode="after")
    @classmethod
    def _redis_only(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("redis://", "rediss://")):
            raise ValueError("the jobs broker must be Redis (redis:// or rediss://)")
        return value

    @property
    def storage_backend(self) -> Literal["s3", "local"]:
        return "s3" if self.s3_bucket else "local"

    @property
    def embedded_broker(self) -> bool:
        return self.jobs_broker_url is None

    @property
    def embedded_broker_socket(self) -> Path:
        """Where the embedded broker's Redis listens (a unix socket: nothing to expose or collide with)."""
        return self.jobs_dir.resolve() / "redis.sock"

    def jobs_broker(self) -> str:
        """The broker's URL as Celery/kombu spell it (the embedded one's is a unix socket)."""
        if self.jobs_broker_url is not None:
            return self.jobs_broker_url.get_secret_value()
        return f"redis+socket://{self.embedded_broker_socket}"

    @property
    def webhook_hosts(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.webhook_allowed_hosts.split(",") if h.strip())


def _describe(error: ErrorDetails) -> str:
    if not error["loc"]:  # a rule across settings: its message names them
        return redact(str(error["msg"]).removeprefix("Value error, "))
    field = str(error["loc"][0])
    info = Settings.model_fields.get(field)
    allowed = info.description if info and info.description else error["msg"]
    value = error.get("input")
    shown = "" if value is None or isinstance(value, dict) else f"={redact(str(value))}"
    if field in SECRET_FIELDS:
        shown = "=<hidden>" if value else ""  # a secret is never echoed, even a wrong one
    return f"{field.upper()}{shown}: invalid, expected {allowed} ({redact(str(error['msg']))})"


def unknown_settings(names: Any) -> list[str]:
    """One line per name that is no setting, with the closest setting when there is one."""
    lines = []
    for name in sorted(set(names) - set(Settings.model_fields)):
        close = difflib.get_close_matches(str(name), Settings.model_fields, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        lines.append(f"{name}: not a setting{hint}")
    return lines


class SettingsOverrides(BaseModel):
    """Settings given in code or a Serve config's ``args.settings``: any subset of ``Settings``' fields by
    their field names, nothing else. The environment cannot be checked this way (it holds every process's
    variables), but a key written here that is no setting fails (``quality_treshold: 0.9`` is an error,
    not a silently ignored line). Values are validated by ``Settings`` itself."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _only_settings(cls, data: Any) -> Any:
        if isinstance(data, dict) and (unknown := unknown_settings(data)):
            raise ValueError("unknown settings: " + ", ".join(unknown))
        return data

    def as_dict(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and ``.env``; keyword arguments win over both and must name settings."""
    if unknown := unknown_settings(overrides):
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(unknown))
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [_describe(e) for e in exc.errors(include_url=False)]
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(lines)) from None
