"""The spool keeps objects durably, hands them over in order, once, and never a damaged one."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from deployments.contracts.errors import SpoolFullError, StorageUnreachableError
from deployments.storage.spool import Spool, SpoolEntry


def test_an_entry_is_one_complete_file_with_no_temporary_left(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10_000)
    assert spool.add("upscaled/a-1.png", b"pixels", "image/png", {"width": "2"})
    (entry,) = spool.entries()
    assert entry.suffix == ".obj" and not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))
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
    assert spool.drain(seen.append) == 5
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
    assert spool.drain(lambda e: delivered.append(e.key)) == 2 and delivered == ["a", "b", "c"]


def test_a_damaged_entry_is_quarantined_never_delivered(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10_000)
    spool.add("bad", b"original bytes", "image/png", {})
    spool.add("good", b"fine", "image/png", {})
    bad = spool.entries()[0]
    bad.write_bytes(bad.read_bytes()[:-3] + b"XYZ")  # bit rot after the write
    delivered: list[str] = []
    assert spool.drain(lambda e: delivered.append(e.key)) == 1
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
    assert Spool(tmp_path, 10_000).drain(lambda e: delivered.append(e.data)) == 1
    assert delivered == [b"kept"]


def test_an_entry_another_replica_holds_stops_the_pass(tmp_path: Path) -> None:
    import fcntl

    spool = Spool(tmp_path, 10_000)
    spool.add("a", b"a", "image/png", {})
    spool.add("b", b"b", "image/png", {})
    with open(spool.entries()[0], "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert spool.drain(lambda e: None) == 0  # "b" waits: order is kept
    assert len(spool.entries()) == 2


def test_a_discarded_entry_never_reaches_the_bucket(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    spool.add("jobs/a/0000.png", b"a", "image/png", {})
    spool.add("jobs/a/0001.png", b"b", "image/png", {})
    assert spool.discard("jobs/a/0000.png") and not spool.discard("jobs/a/0000.png")
    delivered: list[str] = []
    spool.drain(lambda entry: delivered.append(entry.key))
    assert delivered == ["jobs/a/0001.png"]


def test_discarding_an_entry_being_delivered_waits_and_reports_it_delivered(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    spool.add("jobs/a/0000.png", b"a", "image/png", {})
    delivering, release = threading.Event(), threading.Event()

    def slow_delivery(entry: SpoolEntry) -> None:
        delivering.set()
        release.wait(5)

    drainer = threading.Thread(target=spool.drain, args=(slow_delivery,))
    drainer.start()
    assert delivering.wait(5)
    outcome: list[bool] = []
    discarder = threading.Thread(target=lambda: outcome.append(spool.discard("jobs/a/0000.png")))
    discarder.start()
    time.sleep(0.2)
    assert not outcome  # waits for the delivery's lock
    release.set()
    drainer.join(5)
    discarder.join(5)
    assert outcome == [False] and not spool.entries()  # delivered: the caller deletes it from the bucket
