"""A durable local spool: objects the bucket could not take now wait here until it answers again.

One file per object, ``<spooled-at ns>-<key hash>.obj``: a JSON header line (key, content type,
metadata, SHA-256, size) and the bytes. A write goes to a temporary file, is fsynced, renamed to its
final name and the folder is fsynced, so after a crash an entry is either complete or absent (a stray
``.tmp`` is swept when a replica starts). Names sort by time, so entries drain in the order they came.

Every storage replica on a node shares the folder: each drains all of it, taking an entry under an
exclusive ``flock`` (released by the kernel if the replica dies), so a spool left by a dead replica is
drained by the next one. Delivery is create-only and checksum-verified, so two replicas racing for one
entry store it once. The limit and the counts are the folder's, kept under a lock shared by every
process (``deployments/storage/ledger.py``); an add looks its key up in ``keys/`` (one link per waiting
key, named by the key's hash) instead of listing the folder.

An entry the bucket refuses for good (``StorageRefusedError``: access denied, no such bucket) moves to
``dead/`` with a log line naming its key, so it never holds back the entries behind it; an operator
moves it back once the cause is fixed (and restarts the replicas, which count the folder at start). A
damaged entry moves to ``corrupt/``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployments.contracts.errors import SpoolFullError, StorageError, StorageRefusedError
from deployments.storage.ledger import Ledger, Totals

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


def scan_entries(folder: Path) -> list[Path]:
    """Complete entries, oldest first: the one listing of the folder (drain passes and rebuilds of the
    totals use it; an add never does)."""
    return sorted(p for p in folder.iterdir() if p.name.endswith(SUFFIX))


def _digest_of(name: str) -> str:
    """The key hash in an entry's name, ``<spooled-at ns>-<key hash>.obj``."""
    return name.split("-", 1)[-1].removesuffix(SUFFIX)


@dataclass
class DrainPass:
    """What one pass did: entries delivered, and the keys of those moved to ``dead/``."""

    delivered: int = 0
    dead: list[str] = field(default_factory=list)


class Spool:
    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder.resolve()
        self.max_bytes = max_bytes
        self.corrupt_folder = self.folder / "corrupt"
        self.dead_folder = self.folder / "dead"
        self.keys_folder = self.folder / "keys"
        try:
            for sub in (self.corrupt_folder, self.dead_folder, self.keys_folder):
                sub.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"the spool folder cannot be created: {exc.strerror or exc}") from exc
        swept = sweep_stale_tmp(self.folder)
        if swept:
            log.warning("spool: swept %d temporary file(s) left by an interrupted write", swept)
        self.ledger = Ledger(self.folder, self._count)
        self.ledger.rebuild()

    def entries(self) -> list[Path]:
        """Complete entries, oldest first (lists the folder)."""
        return scan_entries(self.folder)

    def totals(self) -> Totals:
        """Objects and bytes waiting, across every process that shares the folder (no listing)."""
        return self.ledger.read()

    def used_bytes(self) -> int:
        return self.totals().bytes

    def find(self, key: str) -> Path | None:
        """The entry waiting for ``key``, found through its link in ``keys/`` (no listing)."""
        try:
            target = os.readlink(self.keys_folder / key_hash(key))
        except OSError:
            return None
        path = self.folder / Path(target).name
        return path if path.exists() else None

    def add(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> bool:
        """Keep the object durably; ``False`` when an entry for ``key`` is already waiting. Refused with
        ``SpoolFullError`` when the folder's entries, every replica's together, would pass ``max_bytes``."""
        entry = SpoolEntry(key, data, content_type, metadata, hashlib.sha256(data).hexdigest())
        raw = _encode(entry)
        with self.ledger.transaction() as totals:
            if self.find(key) is not None:
                return False
            if totals.bytes + len(raw) > self.max_bytes:
                totals.refused = True
                raise SpoolFullError(self.max_bytes)
            final = self.folder / f"{time.time_ns():020d}-{key_hash(key)}{SUFFIX}"
            self._write(final, raw)
            self._link(final.name)
            totals.objects, totals.bytes, totals.refused = totals.objects + 1, totals.bytes + len(raw), False
        return True

    def full(self) -> bool:
        """Whether the spool refuses uploads now: at its limit, or it refused one since the last removal."""
        totals = self.totals()
        return totals.refused or totals.bytes >= self.max_bytes

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

    def _link(self, name: str) -> None:
        """Point ``keys/<key hash>`` at the entry ``name`` (under the ledger's lock)."""
        link = self.keys_folder / _digest_of(name)
        link.unlink(missing_ok=True)
        os.symlink(f"../{name}", link)

    def _unlink(self, name: str) -> None:
        """Drop the key link of the entry ``name`` if it still points at it (under the ledger's lock)."""
        link = self.keys_folder / _digest_of(name)
        try:
            if Path(os.readlink(link)).name == name:
                link.unlink()
        except OSError:
            return

    def _count(self) -> Totals:
        """The totals counted from the folder, with the key links made to match (under the ledger's lock)."""
        totals, names = Totals(), dict[str, str]()
        for path in self.entries():
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            totals.objects, totals.bytes = totals.objects + 1, totals.bytes + size
            names.setdefault(_digest_of(path.name), path.name)  # the oldest, should a crash have left two
        for link in self.keys_folder.iterdir():
            target = Path(os.readlink(link)).name if link.is_symlink() else None
            if names.get(link.name) != target:
                link.unlink(missing_ok=True)
        for digest, name in names.items():
            if not os.path.lexists(self.keys_folder / digest):
                os.symlink(f"../{name}", self.keys_folder / digest)
        return totals

    def _remove(self, path: Path, size: int, move_to: Path | None = None) -> None:
        """Take a locked entry out of the spool (deleted, or moved to ``move_to``) and out of the totals."""
        with self.ledger.transaction() as totals:
            try:
                if move_to is None:
                    path.unlink()
                else:
                    os.rename(path, move_to / path.name)
            except FileNotFoundError:
                return
            self._unlink(path.name)
            totals.objects, totals.bytes = max(0, totals.objects - 1), max(0, totals.bytes - size)
            totals.refused = False
        fsync_dir(self.folder)

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
            stat = os.fstat(f.fileno())
            if stat.st_nlink == 0:
                return False
            self._remove(path, stat.st_size)
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

    def drain(self, deliver: Callable[[SpoolEntry], None], done: DrainPass | None = None) -> DrainPass:
        """Deliver entries oldest first; stops at the first that ``deliver`` cannot store now (it raises)
        or that another replica holds. One the bucket refuses for good (``StorageRefusedError``) moves to
        ``dead/`` and the pass goes on. ``done`` is filled as the pass goes, so it also counts what a
        pass that raised had delivered."""
        done = DrainPass() if done is None else done
        for path in self.entries():
            if not self._drain_one(path, deliver, done):
                break
        return done

    def _drain_one(self, path: Path, deliver: Callable[[SpoolEntry], None], done: DrainPass) -> bool:
        """Deliver ``path`` under its lock; ``False`` stops the pass (another replica is delivering it:
        keep the order, let it go on)."""
        try:
            f = open(path, "rb")  # noqa: SIM115  # held open for the lock's lifetime
        except FileNotFoundError:
            return True  # another replica delivered it meanwhile
        with f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            stat = os.fstat(f.fileno())
            if stat.st_nlink == 0:
                return True  # delivered and removed between our listing and our lock
            try:
                entry = _decode(f.read())
            except CorruptEntryError as exc:
                log.error("spool: %s is corrupt (%s); moved to %s/", path.name, exc, self.corrupt_folder.name)
                self._remove(path, stat.st_size, self.corrupt_folder)
                return True
            try:
                deliver(entry)  # raises when the bucket cannot take it yet
            except StorageRefusedError as exc:
                log.error(
                    "spool: the bucket refused %r for good (%s); moved to %s/%s", entry.key, exc, "dead", path.name
                )
                self._remove(path, stat.st_size, self.dead_folder)
                done.dead.append(entry.key)
                return True
            self._remove(path, stat.st_size)
            done.delivered += 1
        return True
