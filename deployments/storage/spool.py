"""A durable local spool: objects the bucket could not take now wait here until it answers again.

One file per object, ``<spooled-at ns>-<key hash>.obj``: a JSON header line (key, content type,
metadata, SHA-256, size) and the bytes. A write goes to a temporary file, is fsynced, renamed to its
final name and the folder is fsynced, so after a crash an entry is either complete or absent (a stray
``.tmp`` is swept when a replica starts). Names sort by time, so entries drain in the order they came.

Every storage replica on a node shares the folder: each drains all of it, taking an entry under an
exclusive ``flock`` (released by the kernel if the replica dies), so a spool left by a dead replica is
drained by the next one. Delivery is create-only and checksum-verified, so two replicas racing for one
entry store it once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployments.contracts.errors import SpoolFullError, StorageError

log = logging.getLogger("ray.serve")

SUFFIX = ".obj"
TMP_SUFFIX = ".tmp"
STALE_TMP_S = 60.0  # a .tmp younger than this may be another live replica's write in progress


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sweep_stale_tmp(folder: Path, pattern: str = f"*{TMP_SUFFIX}", older_than_s: float = STALE_TMP_S) -> int:
    """Delete temporary files a crashed write left behind under ``folder``; returns how many."""
    swept, cutoff = 0, time.time() - older_than_s
    for path in folder.rglob(pattern):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                swept += 1
        except FileNotFoundError:
            continue
    return swept


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SpoolEntry:
    key: str
    data: bytes
    content_type: str
    metadata: dict[str, str]
    sha256: str


class CorruptEntryError(Exception):
    """An entry whose bytes no longer match the checksum written with them (or has no valid header)."""


def _encode(entry: SpoolEntry) -> bytes:
    header = {
        "key": entry.key,
        "content_type": entry.content_type,
        "metadata": entry.metadata,
        "sha256": entry.sha256,
        "size": len(entry.data),
    }
    return json.dumps(header).encode() + b"\n" + entry.data


def _decode(raw: bytes) -> SpoolEntry:
    head, sep, data = raw.partition(b"\n")
    try:
        header: dict[str, Any] = json.loads(head)
        entry = SpoolEntry(header["key"], data, header["content_type"], header["metadata"], header["sha256"])
        size = int(header["size"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptEntryError(f"unreadable header: {exc}") from exc
    if not sep or len(data) != size or hashlib.sha256(data).hexdigest() != entry.sha256:
        raise CorruptEntryError(f"checksum mismatch for {entry.key!r}")
    return entry


class Spool:
    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder.resolve()
        self.max_bytes = max_bytes
        self.corrupt_folder = self.folder / "corrupt"
        self._lock = threading.Lock()
        self._refused = False  # an add was refused for room and nothing has left since
        try:
            self.corrupt_folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"the spool folder cannot be created: {exc.strerror or exc}") from exc
        swept = sweep_stale_tmp(self.folder)
        if swept:
            log.warning("spool: swept %d temporary file(s) left by an interrupted write", swept)

    def entries(self) -> list[Path]:
        """Complete entries, oldest first."""
        return sorted(p for p in self.folder.iterdir() if p.name.endswith(SUFFIX))

    def find(self, key: str) -> Path | None:
        tail = f"-{key_hash(key)}{SUFFIX}"
        return next((p for p in self.entries() if p.name.endswith(tail)), None)

    def used_bytes(self) -> int:
        total = 0
        for path in self.entries():
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                continue
        return total

    def add(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> bool:
        """Keep the object durably; ``False`` when an entry for ``key`` is already waiting."""
        entry = SpoolEntry(key, data, content_type, metadata, hashlib.sha256(data).hexdigest())
        raw = _encode(entry)
        with self._lock:
            if self.find(key) is not None:
                return False
            if self.used_bytes() + len(raw) > self.max_bytes:
                self._refused = True
                raise SpoolFullError(self.max_bytes)
            final = self.folder / f"{time.time_ns():020d}-{key_hash(key)}{SUFFIX}"
            self._write(final, raw)
            self._refused = False
        return True

    def full(self) -> bool:
        """Whether the spool refuses uploads now: at its limit, or it refused one since the last delivery."""
        return self._refused or self.used_bytes() >= self.max_bytes

    def _write(self, final: Path, raw: bytes) -> None:
        tmp = self.folder / f".{final.name}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}"
        try:
            with open(tmp, "xb") as f:
                f.write(raw)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, final)
            fsync_dir(self.folder)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StorageError(
                f"the bucket is unreachable and the spool cannot be written ({exc.strerror or exc}); "
                "nothing was stored, retry later."
            ) from exc

    def read(self, key: str) -> bytes | None:
        """The bytes of the entry waiting for ``key``, if any (reads of pending objects)."""
        path = self.find(key)
        if path is None:
            return None
        try:
            return _decode(path.read_bytes()).data
        except (FileNotFoundError, CorruptEntryError):
            return None

    def discard(self, key: str) -> bool:
        """Remove the entry waiting for ``key`` before it reaches the bucket: ``True`` when one was
        removed; ``False`` when none waits, including one a drainer delivered while this waited for its
        lock (the object is in the bucket then)."""
        path = self.find(key)
        if path is None:
            return False
        try:
            f = open(path, "rb")  # noqa: SIM115  # held open for the lock's lifetime
        except FileNotFoundError:
            return False
        with f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # waits while a drainer delivers it
            if os.fstat(f.fileno()).st_nlink == 0:
                return False
            path.unlink()
            fsync_dir(self.folder)
        self._refused = False
        return True

    def oldest_age_s(self) -> float | None:
        entries = self.entries()
        if not entries:
            return None
        return max(0.0, (time.time_ns() - int(entries[0].name.split("-", 1)[0])) / 1e9)

    def check_writable(self) -> None:
        probe = self.folder / f".health-{uuid.uuid4().hex}{TMP_SUFFIX}"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise StorageError(f"the spool folder is not writable: {exc.strerror or exc}") from exc

    def drain(self, deliver: Callable[[SpoolEntry], None]) -> int:
        """Deliver entries oldest first; stops at the first that ``deliver`` cannot store (it raises)
        or that another replica holds. Returns how many were delivered."""
        delivered = 0
        for path in self.entries():
            outcome = self._drain_one(path, deliver)
            if outcome is None:
                break
            delivered += outcome
        if delivered:
            self._refused = False
        return delivered

    def _drain_one(self, path: Path, deliver: Callable[[SpoolEntry], None]) -> int | None:
        """1 delivered, 0 skipped (gone or corrupt), None: stop this pass."""
        try:
            f = open(path, "rb")  # noqa: SIM115  # held open for the lock's lifetime
        except FileNotFoundError:
            return 0  # another replica delivered it meanwhile
        with f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return None  # another replica is delivering it: keep the order, let it go on
            if os.fstat(f.fileno()).st_nlink == 0:
                return 0  # delivered and removed between our listing and our lock
            try:
                entry = _decode(f.read())
            except CorruptEntryError as exc:
                self._quarantine(path, str(exc))
                return 0
            deliver(entry)  # raises when the bucket cannot take it yet
            path.unlink(missing_ok=True)
            fsync_dir(self.folder)
        return 1

    def _quarantine(self, path: Path, reason: str) -> None:
        log.error("spool: %s is corrupt (%s); moved to %s", path.name, reason, self.corrupt_folder.name)
        os.rename(path, self.corrupt_folder / path.name)
