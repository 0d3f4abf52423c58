"""API keys, held only as salted scrypt hashes, and the stable non-secret id of each.

Keys come from ``API_KEY`` / ``API_KEYS`` (plain text in the environment, hashed by the app builder so
no deployment receives them) or ``API_KEYS_FILE`` (one hash per line, made by this module). A key's
**id** is the first 12 hex characters of a SHA-256 over its stored hash — stable for as long as the
hash is, never derived by a fast hash of the key itself, so it can be logged and stored beside the
jobs a key created (``request_key_id``) without helping anyone guess the key.

Make a line for ``API_KEYS_FILE``::

    python -m deployments.ingress.api_keys            # generates a new key, prints it and its line
    python -m deployments.ingress.api_keys < key.txt  # prints the line for an existing key (stdin)

Verifying costs one scrypt (~40 ms, 16 MiB) per stored hash, so a replica remembers the keys it has
verified (and the last wrong ones); the ingress runs the check off its event loop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_KEY_CHARS = 16
_REMEMBER = 1024


def _scrypt(key: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(key.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class KeyHash:
    """One stored key: ``scrypt$n$r$p$salt$hash`` (URL-safe base64, no padding)."""

    salt: bytes
    digest: bytes
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    @classmethod
    def of(cls, key: str, salt: bytes | None = None) -> KeyHash:
        if len(key) < MIN_KEY_CHARS:
            raise ValueError(f"an API key must be at least {MIN_KEY_CHARS} characters")
        salt = salt if salt is not None else secrets.token_bytes(16)
        return cls(salt, _scrypt(key, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P))

    @classmethod
    def parse(cls, line: str) -> KeyHash:
        parts = line.split("$")
        if len(parts) != 6 or parts[0] != "scrypt":
            raise ValueError("expected scrypt$n$r$p$salt$hash")
        return cls(_unb64(parts[4]), _unb64(parts[5]), int(parts[1]), int(parts[2]), int(parts[3]))

    def line(self) -> str:
        return f"scrypt${self.n}${self.r}${self.p}${_b64(self.salt)}${_b64(self.digest)}"

    @property
    def key_id(self) -> str:
        return hashlib.sha256(self.line().encode()).hexdigest()[:12]

    def matches(self, key: str) -> bool:
        return hmac.compare_digest(_scrypt(key, self.salt, self.n, self.r, self.p), self.digest)


def env_key_hash(key: str) -> KeyHash:
    """A key from the environment, hashed with a salt derived from the key itself, so its id stays the
    same across deployments (a random salt would give it a new id every time)."""
    return KeyHash.of(key, hashlib.sha256(b"visioncloud-api-key-salt:" + key.encode()).digest()[:16])


def read_keys_file(path: Path) -> list[KeyHash]:
    """Hashes from ``API_KEYS_FILE``: one per line; blank lines and ``#`` comments are skipped."""
    hashes = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            hashes.append(KeyHash.parse(line.split()[0]))
        except ValueError as exc:
            raise ValueError(f"API_KEYS_FILE line {number}: {exc}") from None
    return hashes


class KeyRing:
    """The keys a request may present. Empty: the API is open (no key needed)."""

    def __init__(self, hashes: list[KeyHash]) -> None:
        self.hashes = hashes
        self._lock = threading.Lock()
        self._known: OrderedDict[bytes, str | None] = OrderedDict()  # fast fingerprint → key id, or None

    @classmethod
    def from_keys(cls, keys: list[str], keys_file: Path | None = None) -> KeyRing:
        return cls([env_key_hash(k) for k in keys] + (read_keys_file(keys_file) if keys_file else []))

    def __bool__(self) -> bool:
        return bool(self.hashes)

    def __getstate__(self) -> dict[str, Any]:  # travels to the ingress replicas without its cache or lock
        return {"hashes": self.hashes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["hashes"])  # type: ignore[misc]

    def key_id(self, presented: str) -> str | None:
        """The id of the stored key ``presented`` matches, or ``None``. Blocking (scrypt) on first sight."""
        if not presented or len(presented) > 1024:
            return None
        fingerprint = hashlib.sha256(presented.encode()).digest()
        with self._lock:
            if fingerprint in self._known:
                self._known.move_to_end(fingerprint)
                return self._known[fingerprint]
        found = next((h.key_id for h in self.hashes if h.matches(presented)), None)
        with self._lock:
            self._known[fingerprint] = found
            while len(self._known) > _REMEMBER:
                self._known.popitem(last=False)
        return found


def request_key_id(scope_or_request: Any) -> str | None:
    """The id of the key the current request was let in with (``None`` when the API has no keys).
    Takes a Starlette ``Request`` or an ASGI scope; the access middleware sets it before any route runs.
    The jobs routes record it on a job and filter by it, so a key sees only the jobs it created."""
    scope = getattr(scope_or_request, "scope", scope_or_request)
    state = scope.get("state") or {}
    value = state.get("key_id")
    return value if isinstance(value, str) else None


def main() -> None:
    """Print an API_KEYS_FILE line for the key on stdin, or for a new key (printed first)."""
    given = "" if sys.stdin.isatty() else sys.stdin.read().strip()
    key = given or secrets.token_urlsafe(32)
    if not given:
        sys.stdout.write(f"new key (give it to the client, keep it nowhere else): {key}\n")
    sys.stdout.write(KeyHash.of(key).line() + "\n")


if __name__ == "__main__":
    main()
