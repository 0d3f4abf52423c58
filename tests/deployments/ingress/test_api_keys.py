"""API keys at rest and at the door: SHA-256 lines made by the module's command, older scrypt lines
still accepted (and remembered once verified), bad lines named by number."""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from configs.settings import load_settings
from deployments.ingress.api_keys import KeyRing, StoredKey, read_keys_file
from deployments.ingress.legacy_keys import ScryptLine

K1, K2, K3 = "k1-0123456789abcdef", "k2-0123456789abcdef", "k3-0123456789abcdef"


def line_for(key: str, *args: str) -> str:
    made = subprocess.run(
        [sys.executable, "-m", "deployments.ingress.api_keys", *args],
        input=key,
        capture_output=True,
        text=True,
        check=True,
    )
    return made.stdout.strip()


def test_a_new_key_is_generated_with_its_sha256_line() -> None:
    made = subprocess.run(
        [sys.executable, "-m", "deployments.ingress.api_keys"], capture_output=True, text=True, check=True
    )
    first, line = made.stdout.strip().splitlines()
    key = first.rsplit(" ", 1)[1]
    assert len(key) >= 43 and line.startswith("sha256$") and key not in line
    assert KeyRing([StoredKey.parse(line)]).lookup(key) == StoredKey.parse(line).key_id


def test_the_legacy_api_key_a_new_line_and_an_old_scrypt_line_all_work(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old_line = ScryptLine.of(K3, b"0123456789abcdef").line()
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# clients\n{line_for(K2)}  # k2\n\n{old_line}\n")
    assert [len(part) for part in read_keys_file(keys_file)] == [1, 1]
    settings = load_settings(api_key=K1, api_keys_file=keys_file)
    with caplog.at_level(logging.WARNING, logger="ray.serve"):
        ring = KeyRing.from_keys(settings.api_key_list, settings.api_keys_file)
    assert "1 scrypt line(s)" in caplog.text and "python -m deployments.ingress.api_keys" in caplog.text
    assert ring.lookup(K1) and ring.lookup(K2) and ring.lookup(K3) is None  # the scrypt line needs scrypt
    assert ring.key_id(K3) == ScryptLine.parse(old_line).key_id  # the id it always had
    assert ring.key_id("k4-0123456789abcdef") is None


def test_a_verified_scrypt_key_is_remembered_and_a_wrong_one_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = KeyRing([], [ScryptLine.of(K3, b"0123456789abcdef")])
    assert ring.verify_legacy(K3) and ring.verify_legacy("wrong-0123456789abc") is None
    monkeypatch.setattr(hashlib, "scrypt", lambda *a, **k: pytest.fail("scrypt ran again"))
    assert ring.lookup(K3) == ring.legacy[0].key_id and ring.lookup("wrong-0123456789abc") is None
    assert len(ring._by_digest) == 1  # successes only


def test_the_ring_travels_to_a_replica_whole(tmp_path: Path) -> None:
    import pickle

    ring = pickle.loads(pickle.dumps(KeyRing.from_keys([K1], None)))
    assert ring.lookup(K1) and ring.lookup(K2) is None and K1.encode() not in pickle.dumps(ring)


def test_a_bad_line_is_named_by_its_number(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"{line_for(K1)}\nsha256$tooshort\n")
    with pytest.raises(ValueError, match="line 2: expected sha256"):
        read_keys_file(keys_file)


def test_a_converted_scrypt_line_keeps_its_key_id(tmp_path: Path) -> None:
    old_line = ScryptLine.of(K3, b"0123456789abcdef").line()
    new_line = line_for(K3, "--replace", old_line)
    assert new_line.startswith("sha256$") and StoredKey.parse(new_line).key_id == ScryptLine.parse(old_line).key_id
    keys_file = tmp_path / "keys"
    keys_file.write_text(new_line + "\n")
    assert KeyRing.from_keys([], keys_file).lookup(K3) == ScryptLine.parse(old_line).key_id
    with pytest.raises(subprocess.CalledProcessError):
        line_for(K1, "--replace", old_line)  # another key: refused, nothing printed
