"""S3 (AWS or any S3-compatible endpoint) through boto3.

Writes are create-only (``IfNoneMatch="*"``: a retry of the same upload finds the object and checks
it is identical instead of overwriting) and verified (a SHA-256 checksum sent in a header, which the
server checks against the body and echoes back; ``request_checksum_calculation="when_required"`` keeps
boto3 from streaming ``aws-chunked`` trailers that many S3-compatible servers reject). Timeouts and
retries are explicit: boto3's defaults wait minutes on a hung endpoint.

A bucket that does not answer (connection refused, timeouts, 5xx, throttling) raises
``StorageUnreachableError``, which the deployment's spool absorbs. Messages never name the endpoint
or the bucket (they reach clients and ``/api/health``); the details go to the log.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from typing import Any
from urllib.parse import quote

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from configs.settings import redact
from deployments.contracts.errors import (
    ObjectNotFoundError,
    StorageConflictError,
    StorageError,
    StorageRefusedError,
    StorageUnreachableError,
)
from deployments.contracts.values import StoredObject

log = logging.getLogger("ray.serve")

_EXISTS = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
_MISSING = {"NoSuchKey", "404", "NotFound"}
_TRANSIENT = {
    "SlowDown",
    "RequestTimeout",
    "ServiceUnavailable",
    "InternalError",
    "Throttling",
    "ThrottlingException",
    "TooManyRequests",
    "RequestTimeTooSkewed",
}
_THROTTLED = {408, 429}  # 4xx statuses that say "later", not "never"


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _failure(action: str, exc: ClientError | BotoCoreError) -> StorageError:
    """The error to raise for a failed call: transient ones are ``StorageUnreachableError``."""
    log.warning("S3 %s failed: %s", action, redact(str(exc)))  # botocore names the endpoint URL
    if isinstance(exc, BotoCoreError):
        return StorageUnreachableError(f"the storage bucket did not answer while {action} ({type(exc).__name__})")
    code = _error_code(exc)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if status >= 500 or status in _THROTTLED or code in _TRANSIENT:
        return StorageUnreachableError(f"the storage bucket failed while {action} ({code or status})")
    if 400 <= status < 500:
        return StorageRefusedError(f"the storage bucket refused {action} ({code or status})")
    return StorageError(f"the storage bucket refused {action} ({code or status})")


class S3Backend:
    name = "s3"
    presigns = True

    def __init__(
        self,
        bucket: str,
        region: str,
        endpoint_url: str | None = None,
        addressing_style: str = "auto",
        connect_timeout: float = 2.0,
        read_timeout: float = 30.0,
        max_attempts: int = 3,
    ) -> None:
        self.bucket = bucket
        self.region = region
        self.endpoint_url = endpoint_url.rstrip("/") if endpoint_url else None
        config = Config(
            region_name=region,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"mode": "standard", "max_attempts": max_attempts},
            s3={"addressing_style": addressing_style},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            signature_version="s3v4",  # presigned URLs too (botocore presigns with SigV2 otherwise)
        )
        self.client: Any = boto3.session.Session().client("s3", endpoint_url=self.endpoint_url, config=config)

    def url(self, key: str) -> str:
        path = quote(key, safe="/")
        if self.endpoint_url:
            return f"{self.endpoint_url}/{self.bucket}/{path}"
        return f"https://{self.bucket}.s3.{self.region}.amazonaws.com/{path}"

    def put(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> StoredObject:
        raw = hashlib.sha256(data).digest()
        digest, checksum = raw.hex(), base64.b64encode(raw).decode("ascii")
        try:
            response = self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                Metadata={**metadata, "sha256": digest},
                ChecksumSHA256=checksum,
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if _error_code(exc) in _EXISTS:
                return self._existing(key, digest, len(data))
            raise _failure(f"writing {key!r}", exc) from exc
        except BotoCoreError as exc:
            raise _failure(f"writing {key!r}", exc) from exc
        if response.get("ChecksumSHA256") not in (None, checksum):
            raise StorageError(f"the bucket stored {key!r} with checksum {response['ChecksumSHA256']}, sent {checksum}")
        if "ChecksumSHA256" not in response:
            # The server did not confirm the checksum: read the object's size and our digest back.
            self._existing(key, digest, len(data))
        return StoredObject(key, self.url(key), len(data), digest, created=True)

    def _existing(self, key: str, digest: str, size: int) -> StoredObject:
        found = self.existing(key)
        if found.sha256 != digest or found.size != size:
            raise StorageConflictError(key)
        return found

    def existing(self, key: str) -> StoredObject:
        """The object already stored at ``key`` (``created=False``), as its metadata describes it."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise _failure(f"verifying {key!r}", exc) from exc
        digest = str(head.get("Metadata", {}).get("sha256", ""))
        return StoredObject(key, self.url(key), int(head.get("ContentLength", 0)), digest, created=False)

    def get(self, key: str) -> bytes:
        try:
            return bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if _error_code(exc) in _MISSING:
                raise ObjectNotFoundError(key) from exc
            raise _failure(f"reading {key!r}", exc) from exc
        except BotoCoreError as exc:
            raise _failure(f"reading {key!r}", exc) from exc

    def delete(self, key: str) -> None:
        try:  # S3 answers a missing key with 204 too
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise _failure(f"deleting {key!r}", exc) from exc

    def download_url(self, key: str, expires_s: int) -> str | None:
        """A presigned GET that works for ``expires_s`` seconds without credentials. Signing is local
        computation (no request is sent), so it is cheap enough to do whenever a result is shown."""
        try:
            url: str = self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_s
            )
        except (ClientError, BotoCoreError) as exc:
            raise _failure(f"signing a download URL for {key!r}", exc) from exc
        return url

    def check_writable(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise _failure("checking the bucket", exc) from exc

    def check_client(self) -> None:
        """The client can still sign a request (no network): a liveness check for ``check_health``."""
        self.client.generate_presigned_url("head_bucket", Params={"Bucket": self.bucket}, ExpiresIn=60)
