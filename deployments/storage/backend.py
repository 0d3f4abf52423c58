"""The interface both storage backends implement (blocking calls; the deployment runs them in threads)."""

from __future__ import annotations

from typing import Protocol

from deployments.contracts.values import StoredObject


class Backend(Protocol):
    name: str
    presigns: bool  # whether ``download_url`` gives URLs (else the service's object route serves objects)

    def put(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> StoredObject:
        """Create ``key`` with ``data`` unless an identical object is there; never overwrite."""
        ...

    def existing(self, key: str) -> StoredObject:
        """The object stored at ``key`` (``created=False``); ``StorageError`` when it cannot be read."""
        ...

    def url(self, key: str) -> str: ...

    def get(self, key: str) -> bytes:
        """The object's bytes; ``ObjectNotFoundError`` when there is none."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; a key that is not there is no error (deleting is idempotent)."""
        ...

    def download_url(self, key: str, expires_s: int) -> str | None:
        """A URL a browser may fetch the object from for ``expires_s`` seconds, or None (local storage)."""
        ...

    def check_writable(self) -> None:
        """Raise ``StorageError`` with the reason when objects cannot be written now
        (``StorageUnreachableError`` when the failure is transient)."""
        ...

    def check_client(self) -> None:
        """Raise when this replica's client itself is broken (liveness, no network call)."""
        ...
