"""Object keys that never trust the client's file name.

``<folder>/<sanitised-stem>-<digest prefix>.<ext>``: the stem keeps the name readable, the digest of
the content makes two different images with the same name distinct and a retried upload land on the
same key (idempotent).

Ownership: with API keys, each key that stored an object has a zero-byte marker
``owners/<key id>/<object key>`` (``owner_key``), outside the result folders.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from deployments.contracts.values import Folder

MAX_STEM = 64
DIGEST_CHARS = 16  # 64 bits of SHA-256: collisions need ~4·10⁹ distinct images under one stem
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_JOB_ID = r"[A-Za-z0-9_-]{8,64}"
_EXTENSION = r"[a-z0-9]{1,5}"
_OWNER = re.compile(r"[A-Za-z0-9_-]{1,64}")
OWNERS = "owners"


def sanitise_stem(filename: str | None) -> str:
    """A short ASCII stem from an untrusted file name: no path, no control characters, no dots first."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    cleaned = _UNSAFE.sub("-", ascii_stem).strip(".-_")[:MAX_STEM].strip(".-_")
    return cleaned or "image"


def derived_digest(source_digest: str, variant: str | None) -> str:
    """The content address of an object made from a source: the source's digest and how it was made
    (e.g. ``vcsr-m-x2:x2:png``), so a retry of the same work lands on the same key."""
    if variant is None:
        return source_digest
    return hashlib.sha256(f"{source_digest}:{variant}".encode()).hexdigest()


def job_input_key(job_id: str, index: int, extension: str) -> str:
    """Where a job's accepted input waits for the consumer: outside the three result folders."""
    if not re.fullmatch(_JOB_ID, job_id):
        raise ValueError(f"bad job id {job_id!r}")
    return f"jobs/{job_id}/{index:04d}.{extension}"


_JOB_INPUT = re.compile(rf"jobs/{_JOB_ID}/[0-9]{{4,}}\.{_EXTENSION}")


def is_job_input_key(key: str) -> bool:
    """Whether ``key`` is one ``job_input_key`` makes (the only keys storage ever deletes)."""
    return _JOB_INPUT.fullmatch(key) is not None


def owner_key(owner: str, key: str) -> str:
    """The marker that says the API key ``owner`` (its id) stored ``key``."""
    if not _OWNER.fullmatch(owner):
        raise ValueError(f"bad owner id {owner!r}")
    return f"{OWNERS}/{owner}/{key}"


def object_key(folder: Folder, stem: str, digest: str, extension: str) -> str:
    if not re.fullmatch(rf"[0-9a-f]{{{DIGEST_CHARS},}}", digest):
        raise ValueError(f"digest must be lowercase hex of at least {DIGEST_CHARS} characters, got {digest!r}")
    if not re.fullmatch(_EXTENSION, extension):
        raise ValueError(f"bad extension {extension!r}")
    return f"{folder.value}/{sanitise_stem(stem)}-{digest[:DIGEST_CHARS]}.{extension}"
