"""The spool's running totals, shared by every process that opens the folder.

Storage replicas on a node share ``SPOOL_DIR``, so the limit (``SPOOL_MAX_BYTES``) is the folder's, not
each replica's: every change to the spool (an add, a delivery, a discard, a dead letter) happens while
holding an exclusive ``flock`` on ``<spool>/.lock`` and updates the totals kept in ``<spool>/.state``
(objects, bytes, and whether an add was refused for room since the last removal). An add then reads
three numbers instead of listing and statting the folder, so its cost does not grow with the entries
waiting (measured by ``python -m bench.spool_add``; the figures are in the README's spool section).

The totals are rebuilt by one scan of the folder when a replica starts, and whenever the state file is
missing or unreadable. A crash between a change and its update leaves them off by that one entry until
the next replica starts. The state file is replaced by rename, so a reader without the lock still sees
one whole version.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("ray.serve")

LOCK_NAME = ".lock"
STATE_NAME = ".state"


@dataclass
class Totals:
    """What waits in the spool: complete entries and their bytes on disk."""

    objects: int = 0
    bytes: int = 0
    refused: bool = False  # an add was refused for room and nothing has left since


class Ledger:
    def __init__(self, folder: Path, scan: Callable[[], Totals]) -> None:
        """``scan`` counts the folder; it is called only to rebuild the totals."""
        self.lock_path = folder / LOCK_NAME
        self.state_path = folder / STATE_NAME
        self._scan = scan

    @contextmanager
    def transaction(self) -> Iterator[Totals]:
        """The totals under the folder's lock, written back when the caller changed them. The lock is
        taken on a file opened for this call, so threads of one process exclude each other too (``flock``
        belongs to the open file), and the kernel releases it if the process dies."""
        with open(self.lock_path, "ab") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            totals = self._load()
            before = dataclasses.replace(totals)
            try:
                yield totals
            finally:  # a refusal raised by the caller is a change too (``refused``)
                if totals != before:
                    self._store(totals)

    def read(self) -> Totals:
        """The totals as last written (no lock: the file is replaced whole)."""
        loaded = self._parse()
        if loaded is not None:
            return loaded
        with self.transaction() as totals:
            return dataclasses.replace(totals)

    def rebuild(self) -> Totals:
        """Count the folder again (at start): the totals written by a process that died may be off."""
        with open(self.lock_path, "ab") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            totals = self._scan()
            self._store(totals)
            return totals

    def _load(self) -> Totals:
        loaded = self._parse()
        if loaded is None:
            log.warning("spool: %s is missing or unreadable; counting the folder again", self.state_path.name)
            loaded = self._scan()
            self._store(loaded)
        return loaded

    def _parse(self) -> Totals | None:
        try:
            raw = json.loads(self.state_path.read_bytes())
            totals = Totals(int(raw["objects"]), int(raw["bytes"]), bool(raw["refused"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return totals if totals.objects >= 0 and totals.bytes >= 0 else None

    def _store(self, totals: Totals) -> None:
        # Not fsynced: after a power loss the next start rebuilds the totals from the folder anyway.
        partial = self.state_path.with_name(f"{STATE_NAME}.{os.getpid()}.part")
        partial.write_text(json.dumps(dataclasses.asdict(totals)))
        os.replace(partial, self.state_path)
