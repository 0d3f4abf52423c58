import errno
import hashlib
import os
import time
from pathlib import Path

import pytest

from deployments.contracts.errors import ObjectNotFoundError, StorageConflictError, StorageError
from deployments.storage.local import LocalBackend
from tests.pages import cached_pages


def test_put_creates_the_file_atomically(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    stored = backend.put("upscaled/a-1.png", b"data", "image/png", {})
    path = tmp_path / "upscaled" / "a-1.png"
    assert path.read_bytes() == b"data"
    assert stored.url == "local:upscaled/a-1.png" and stored.created and stored.size == 4
    assert stored.sha256 == hashlib.sha256(b"data").hexdigest()
    assert [p.name for p in path.parent.iterdir()] == ["a-1.png"]  # no temporary files left


def test_the_url_is_relative_to_the_storage_folder_and_never_shows_its_path(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    stored = backend.put("couldn't_upscale/a-1.png", b"data", "image/png", {})
    assert stored.url == "local:couldn%27t_upscale/a-1.png"
    assert backend.existing(stored.key).url == stored.url and str(tmp_path) not in stored.url


def test_a_retry_with_the_same_bytes_is_idempotent(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    backend.put("k/x.png", b"same", "image/png", {})
    again = backend.put("k/x.png", b"same", "image/png", {})
    assert not again.created and backend.get("k/x.png") == b"same"


def test_different_bytes_never_overwrite(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    backend.put("k/x.png", b"first", "image/png", {})
    with pytest.raises(StorageConflictError):
        backend.put("k/x.png", b"second", "image/png", {})
    assert backend.get("k/x.png") == b"first"


def test_keys_cannot_escape_the_folder(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="escapes"):
        LocalBackend(tmp_path / "store").put("../outside.png", b"x", "image/png", {})
    assert not (tmp_path / "outside.png").exists()


def test_a_folder_that_is_a_file_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    backend = LocalBackend(blocker)
    with pytest.raises(StorageError, match="not writable"):
        backend.check_writable()
    with pytest.raises(StorageError, match="cannot write"):
        backend.put("good_quality/a.jpg", b"x", "image/jpeg", {})
    assert str(blocker) not in backend_message(backend)


def backend_message(backend: LocalBackend) -> str:
    try:
        backend.check_writable()
    except StorageError as exc:
        return exc.message
    return ""


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = LocalBackend(tmp_path)

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(StorageError, match="Input/output error"):
        backend.put("upscaled/f-1.png", b"data", "image/png", {})
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_stale_temporary_file_is_swept_at_start(tmp_path: Path) -> None:
    folder = tmp_path / "upscaled"
    folder.mkdir()
    stale = folder / ".x-1.png.0123.tmp"
    stale.write_bytes(b"half a file")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    LocalBackend(tmp_path)
    assert not stale.exists()


def test_a_missing_object_is_not_found_and_has_no_download_url(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    with pytest.raises(ObjectNotFoundError):
        backend.get("upscaled/none-0123456789abcdef.png")
    backend.put("upscaled/x-0123456789abcdef.png", b"x", "image/png", {})
    assert backend.download_url("upscaled/x-0123456789abcdef.png", 60) is None  # the service's route serves it


def test_delete_removes_the_file_and_the_folders_it_leaves_empty(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    backend.put("jobs/j1/0000.png", b"a", "image/png", {})
    backend.put("jobs/j1/0001.png", b"b", "image/png", {})
    backend.put("upscaled/x.png", b"c", "image/png", {})
    backend.delete("jobs/j1/0000.png")
    assert sorted(p.name for p in (tmp_path / "jobs" / "j1").iterdir()) == ["0001.png"]
    backend.delete("jobs/j1/0001.png")
    assert not (tmp_path / "jobs").exists() and (tmp_path / "upscaled" / "x.png").is_file()
    backend.delete("jobs/j1/0001.png")  # already gone: no error
    with pytest.raises(StorageError, match="escapes"):
        backend.delete("../outside.png")


def test_a_folder_another_writer_fills_meanwhile_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = LocalBackend(tmp_path)
    backend.put("jobs/j1/0000.png", b"a", "image/png", {})

    def filled_meanwhile(self: Path) -> None:
        raise OSError(errno.ENOTEMPTY, "Directory not empty", str(self))

    monkeypatch.setattr(Path, "rmdir", filled_meanwhile)
    backend.delete("jobs/j1/0000.png")  # no error: the object is gone, the folder is someone's again
    assert not (tmp_path / "jobs" / "j1" / "0000.png").exists() and (tmp_path / "jobs" / "j1").is_dir()


def test_a_stored_object_leaves_the_page_cache_once_durable(tmp_path: Path) -> None:
    """A result is written once and read rarely: kept in the page cache, every new object would take
    pages the kernel must first find (untouched memory on a VM, reclaim on a full host)."""
    data = os.urandom(4 << 20)
    plain = tmp_path / "plain.bin"
    with open(plain, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    assert cached_pages(plain) > 0  # this filesystem caches what is written, so the check means something
    LocalBackend(tmp_path).put("upscaled/big-1.png", data, "image/png", {})
    stored = tmp_path / "upscaled" / "big-1.png"
    assert cached_pages(stored) == 0
    assert stored.read_bytes() == data


def test_a_repeated_put_compares_with_the_stored_file_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A retried or repeated upload of the same bytes: one read and hash, not a second durable write of
    # the whole object (a temporary file written, fsynced and unlinked) before finding the name taken.
    backend = LocalBackend(tmp_path)
    backend.put("k/x.png", b"same", "image/png", {})
    synced: list[int] = []
    fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or fsync(fd))
    again = backend.put("k/x.png", b"same", "image/png", {})
    assert not again.created and again.sha256 == hashlib.sha256(b"same").hexdigest()
    assert synced == [] and [p.name for p in (tmp_path / "k").iterdir()] == ["x.png"]
    with pytest.raises(StorageConflictError):
        backend.put("k/x.png", b"other", "image/png", {})
    assert synced == []
