"""The spool keeps objects durably, hands them over in order, once, and never a damaged one."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from deployments.contracts.errors import SpoolFullError, StorageRefusedError, StorageUnreachableError
from deployments.storage.ledger import Totals
from deployments.storage.spool import Spool, SpoolEntry


def test_an_entry_is_one_complete_file_with_no_temporary_left(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10_000)
    assert spool.add("upscaled/a-1.png", b"pixels", "image/png", {"width": "2"})
    (entry,) = spool.entries()
    assert entry.suffix == ".obj" and not list(tmp_path.glob("*.tmp"))
    assert {p.name for p in tmp_path.glob(".*")} == {".lock", ".state"}  # the shared totals, nothing partial
    assert spool.read("upscaled/a-1.png") == b"pixels"


def test_the_same_key_is_spooled_once(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10_000)
    assert spool.add("k/a.png", b"one", "image/png", {})
    assert not spool.add("k/a.png", b"one", "image/png", {})
    assert len(spool.entries()) == 1


def test_entries_drain_in_the_order_they_came_and_are_removed(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10_000)
    keys = [f"good_quality/{i}-0123456789abcdef.jpg" for i in range(5)]
    for key in keys:
        spool.add(key, key.encode(), "image/jpeg", {"n": key[13]})
    seen: list[SpoolEntry] = []
    assert spool.drain(seen.append).delivered == 5
    assert [e.key for e in seen] == keys and [e.data for e in seen] == [k.encode() for k in keys]
    assert seen[0].metadata == {"n": "0"} and seen[0].sha256 == hashlib.sha256(keys[0].encode()).hexdigest()
    assert spool.entries() == [] and spool.oldest_age_s() is None


def test_a_failed_delivery_keeps_that_entry_and_every_later_one(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10_000)
    for key in ("a", "b", "c"):
        spool.add(key, key.encode(), "image/png", {})
    delivered: list[str] = []

    def deliver(entry: SpoolEntry) -> None:
        if entry.key == "b":
            raise StorageUnreachableError("down")
        delivered.append(entry.key)

    with pytest.raises(StorageUnreachableError):
        spool.drain(deliver)
    assert delivered == ["a"] and len(spool.entries()) == 2
    assert spool.drain(lambda e: delivered.append(e.key)).delivered == 2 and delivered == ["a", "b", "c"]


def test_a_damaged_entry_is_quarantined_never_delivered(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10_000)
    spool.add("bad", b"original bytes", "image/png", {})
    spool.add("good", b"fine", "image/png", {})
    bad = spool.entries()[0]
    bad.write_bytes(bad.read_bytes()[:-3] + b"XYZ")  # bit rot after the write
    delivered: list[str] = []
    assert spool.drain(lambda e: delivered.append(e.key)).delivered == 1
    assert delivered == ["good"] and [p.name for p in (tmp_path / "corrupt").iterdir()] == [bad.name]


def test_over_its_limit_the_spool_refuses_with_retry_after(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 600)
    spool.add("one", b"x" * 400, "image/png", {})
    with pytest.raises(SpoolFullError) as refused:
        spool.add("two", b"y" * 400, "image/png", {})
    assert refused.value.code == "storage_unavailable" and refused.value.retry_after_s
    assert len(spool.entries()) == 1


def test_stale_temporary_files_are_swept_at_start_fresh_ones_kept(tmp_path: Path) -> None:
    stale, fresh = tmp_path / ".a.obj.1.tmp", tmp_path / ".b.obj.2.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"being written by a live replica")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    Spool(tmp_path, 1000)
    assert not stale.exists() and fresh.exists()


def test_oldest_age_and_usage_are_reported(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10_000)
    spool.add("a", b"12345", "image/png", {})
    age = spool.oldest_age_s()
    assert age is not None and 0 <= age < 60
    assert spool.used_bytes() > 5


def test_a_spool_left_by_another_replica_is_drained_by_a_new_one(tmp_path: Path) -> None:
    Spool(tmp_path, 10_000).add("left/behind.png", b"kept", "image/png", {})
    delivered: list[bytes] = []
    assert Spool(tmp_path, 10_000).drain(lambda e: delivered.append(e.data)).delivered == 1
    assert delivered == [b"kept"]


def test_an_entry_another_replica_holds_stops_the_pass(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10_000)
    spool.add("a", b"a", "image/png", {})
    spool.add("b", b"b", "image/png", {})
    with open(spool.entries()[0], "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert spool.drain(lambda e: None).delivered == 0  # "b" waits: order is kept
    assert len(spool.entries()) == 2


def test_a_discarded_entry_never_reaches_the_bucket(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    spool.add("jobs/a/0000.png", b"a", "image/png", {})
    spool.add("jobs/a/0001.png", b"b", "image/png", {})
    assert spool.discard("jobs/a/0000.png") and not spool.discard("jobs/a/0000.png")
    delivered: list[str] = []
    spool.drain(lambda entry: delivered.append(entry.key))
    assert delivered == ["jobs/a/0001.png"]


def test_discarding_an_entry_being_delivered_waits_and_reports_it_delivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path, 1 << 20)
    spool.add("jobs/a/0000.png", b"a", "image/png", {})
    delivering, release, discard_locking = threading.Event(), threading.Event(), threading.Event()
    real_flock = fcntl.flock

    def observed_flock(fd: int, operation: int) -> None:
        if threading.current_thread().name == "discarder" and operation == fcntl.LOCK_EX:
            discard_locking.set()  # the discarder asks for the entry's lock, which the delivery holds
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", observed_flock)

    def slow_delivery(entry: SpoolEntry) -> None:
        delivering.set()
        assert release.wait(5)

    drainer = threading.Thread(target=spool.drain, args=(slow_delivery,))
    drainer.start()
    assert delivering.wait(5)
    outcome: list[bool] = []
    discarder = threading.Thread(target=lambda: outcome.append(spool.discard("jobs/a/0000.png")), name="discarder")
    discarder.start()
    assert discard_locking.wait(5) and not outcome  # blocked behind the delivery's lock
    release.set()
    drainer.join(5)
    discarder.join(5)
    assert outcome == [False] and not spool.entries()  # delivered: the caller deletes it from the bucket


# --- one spool, many processes -----------------------------------------------------------------------

LIMIT = 10_000


def fill(folder: Path, name: str, start: Any) -> int:
    """One replica: add 400-byte objects until the spool refuses; returns how many it stored."""
    spool = Spool(folder, LIMIT)
    start.wait()
    stored = 0
    for i in range(60):
        with contextlib.suppress(SpoolFullError):
            stored += spool.add(f"{name}/{i}.png", bytes([i]) * 400, "image/png", {})
    return stored


def test_replicas_adding_at_once_never_pass_the_limit_together(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")  # separate processes, as separate replicas are
    with context.Manager() as manager:
        start = manager.Barrier(2)
        with context.Pool(2) as pool:
            stored = pool.starmap(fill, [(tmp_path, "a", start), (tmp_path, "b", start)])
    on_disk = sum(p.stat().st_size for p in Spool(tmp_path, LIMIT).entries())
    assert all(stored) and on_disk <= LIMIT
    assert Spool(tmp_path, LIMIT).totals() == Totals(sum(stored), on_disk)


def test_an_add_does_not_list_the_folder_even_with_20000_entries_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(20_000):  # entries as earlier replicas left them (only their names and sizes matter here)
        (tmp_path / f"{i:020d}-{i:016x}.obj").write_bytes(b"x")
    spool = Spool(tmp_path, 1 << 30)  # counts the folder once, at start
    listings: list[str] = []
    real_scandir, real_listdir = os.scandir, os.listdir

    def scandir(path: Any = ".") -> Any:
        listings.append(str(path))
        return real_scandir(path)

    def listdir(path: Any = ".") -> list[str]:
        listings.append(str(path))
        return real_listdir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "listdir", listdir)
    assert spool.add("upscaled/new.png", b"new", "image/png", {})
    assert not spool.add("upscaled/new.png", b"new", "image/png", {})  # found through its key link
    assert not spool.full() and spool.totals().objects == 20_001
    assert listings == []


def test_missing_or_damaged_totals_are_counted_again(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10_000)
    spool.add("a", b"12345", "image/png", {})
    expected = spool.totals()
    (tmp_path / ".state").write_text("{not json")
    assert spool.totals() == expected
    (tmp_path / ".state").unlink()
    spool.add("b", b"67", "image/png", {})
    assert spool.totals().objects == 2 and spool.used_bytes() == sum(p.stat().st_size for p in spool.entries())


def test_an_entry_the_bucket_refuses_for_good_is_set_aside_and_the_rest_delivered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path, 10_000)
    for key in ("a", "refused/b.png", "c"):
        spool.add(key, key.encode(), "image/png", {})
    delivered: list[str] = []

    def deliver(entry: SpoolEntry) -> None:
        if entry.key == "refused/b.png":
            raise StorageRefusedError("the storage bucket refused writing (AccessDenied)")
        delivered.append(entry.key)

    with caplog.at_level(logging.ERROR, logger="ray.serve"):
        done = spool.drain(deliver)
    assert (done.delivered, done.dead, delivered) == (2, ["refused/b.png"], ["a", "c"])
    assert not spool.entries() and spool.totals() == Totals(0, 0)
    (buried,) = (tmp_path / "dead").iterdir()
    assert buried.read_bytes().endswith(b"\nrefused/b.png")
    assert "'refused/b.png'" in caplog.text
