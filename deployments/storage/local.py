"""The embedded default: objects as files under one folder, laid out like the bucket.

A write goes to a temporary file in the target folder, is fsynced, then hard-linked to its final name:
``link`` fails when the name exists, so the write is create-only and atomic (a reader never sees a
partial file), and the folder is fsynced so the new name survives a crash.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

from deployments.contracts import StoredObject
from deployments.errors import StorageConflictError, StorageError


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBackend:
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise StorageError(f"key {key!r} escapes the storage folder")
        return path

    def _stored(self, key: str, path: Path, digest: str, created: bool) -> StoredObject:
        return StoredObject(key, path.as_uri(), path.stat().st_size, digest, created)

    def put(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> StoredObject:
        path = self._path(key)
        digest = hashlib.sha256(data).hexdigest()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            with open(tmp, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
                created = True
            except FileExistsError:
                created = False
            finally:
                tmp.unlink()
            _fsync_dir(path.parent)
            stored = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise StorageError(f"cannot write {key!r} under {self.root}: {exc.strerror or exc}") from exc
        if stored != digest:
            if created:
                raise StorageError(f"verification of {key!r} failed: the file on disk differs from what was written")
            raise StorageConflictError(key)
        return self._stored(key, path, digest, created)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read {key!r}: {exc.strerror or exc}") from exc

    def check_writable(self) -> None:
        probe = self.root / f".health-{uuid.uuid4().hex}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise StorageError(f"storage folder {self.root} is not writable: {exc.strerror or exc}") from exc
