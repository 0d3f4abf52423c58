"""The scrypt era of API keys: ``scrypt$n$r$p$salt$hash`` lines, still accepted, and the ids they gave.

Until issue 18 every key was held as a salted scrypt hash and its id was the first 12 hex characters
of a SHA-256 over that hash's line. Two things survive here:

- ``API_KEYS_FILE`` lines in this format keep working (``KeyRing`` verifies them with scrypt, only
  after the caller's failure budget allows it, and remembers the keys that verified), so an operator
  can regenerate lines at leisure;
- a key from the environment keeps the id it always had (``env_key_id``): jobs are stored with the
  id of the key that made them, and a new id would hide a client's jobs from it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def _scrypt(key: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(key.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class ScryptLine:
    """One stored key: ``scrypt$n$r$p$salt$hash`` (URL-safe base64, no padding)."""

    salt: bytes
    digest: bytes
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    @classmethod
    def of(cls, key: str, salt: bytes) -> ScryptLine:
        return cls(salt, _scrypt(key, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P))

    @classmethod
    def parse(cls, line: str) -> ScryptLine:
        parts = line.split("$")
        if len(parts) != 6 or parts[0] != "scrypt":
            raise ValueError("expected scrypt$n$r$p$salt$hash")
        return cls(unb64(parts[4]), unb64(parts[5]), int(parts[1]), int(parts[2]), int(parts[3]))

    def line(self) -> str:
        return f"scrypt${self.n}${self.r}${self.p}${b64(self.salt)}${b64(self.digest)}"

    @property
    def key_id(self) -> str:
        return hashlib.sha256(self.line().encode()).hexdigest()[:12]

    def matches(self, key: str) -> bool:
        """One scrypt (slow and memory-hard by design: 16 MiB at SCRYPT_N, SCRYPT_R): call it off the event
        loop, and only when allowed."""
        return hmac.compare_digest(_scrypt(key, self.salt, self.n, self.r, self.p), self.digest)


def env_key_id(key: str) -> str:
    """The id an environment key has always had: that of its scrypt line with a salt derived from the
    key. One scrypt, paid once by the app builder, never per request."""
    salt = hashlib.sha256(b"visioncloud-api-key-salt:" + key.encode()).digest()[:16]
    return ScryptLine.of(key, salt).key_id
