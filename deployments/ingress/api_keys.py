"""API keys, held only as SHA-256 digests and looked up in one step, and the stable non-secret id of each.

Keys are random high-entropy tokens (``python -m deployments.ingress.api_keys`` makes 256-bit ones),
not passwords: nobody can search a 2^256 space, so a slow hash would add nothing but a cost per
request that a stranger can make the service pay. A presented key is hashed once (SHA-256, about a
microsecond) and found in a dict keyed by the digest, then confirmed with ``hmac.compare_digest``:
the cost is the same for every key, right or wrong, and a flood of wrong keys evicts nothing (nothing
is remembered of them). Wrong keys are limited per client address by ``KeyCheck`` before any hashing.

Keys come from ``API_KEY`` / ``API_KEYS`` (plain text in the environment, digested by the app builder
so no deployment receives them) or ``API_KEYS_FILE`` (one line per key: ``sha256$<digest>``, made by
this module; the older ``scrypt$…`` lines still work, see ``legacy_keys``). A key's **id** is 12 hex
characters that never reveal the key: an environment key keeps the id it had before (``env_key_id``),
a file line's id is a SHA-256 over the line, or the id written after it (``sha256$<digest>$<id>``: a
``scrypt$`` line converted with ``--replace`` keeps its id). Jobs record the id of the key that made them.

Make a line for ``API_KEYS_FILE``::

    python -m deployments.ingress.api_keys            # generates a new key, prints it and its line
    python -m deployments.ingress.api_keys < key.txt  # prints the line for an existing key (stdin)
    python -m deployments.ingress.api_keys --replace 'scrypt$…' < key.txt  # the same key's new line, same id
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import logging
import re
import secrets
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployments.ingress.legacy_keys import ScryptLine, b64, env_key_id, unb64

log = logging.getLogger("ray.serve")
MIN_KEY_CHARS = 16
MAX_KEY_CHARS = 1024  # longer is no key of ours: refused before hashing


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True)
class StoredKey:
    """One key as the service holds it: its SHA-256 digest and its id."""

    digest: bytes
    key_id: str

    @classmethod
    def from_env(cls, key: str) -> StoredKey:
        return cls(digest(key), env_key_id(key))

    @classmethod
    def parse(cls, line: str) -> StoredKey:
        kind, text, *kept = line.split("$")
        raw = unb64(text) if kind == "sha256" else b""
        if len(raw) != 32 or len(kept) > 1 or (kept and not re.fullmatch("[0-9a-f]{12}", kept[0])):
            raise ValueError(
                "expected sha256$<43 base64url characters>[$<12 hex id>] (or an older scrypt$n$r$p$salt$hash)"
            )
        return cls(raw, kept[0] if kept else hashlib.sha256(line.encode()).hexdigest()[:12])

    @staticmethod
    def line_for(key: str, replaces: str | None = None) -> str:
        """The file line for ``key``; ``replaces``: the key's ``scrypt$`` line, whose id the new line keeps
        (checked: the key must match it)."""
        if len(key) < MIN_KEY_CHARS:
            raise ValueError(f"an API key must be at least {MIN_KEY_CHARS} characters")
        if replaces is None:
            return f"sha256${b64(digest(key))}"
        old = ScryptLine.parse(replaces)
        if not old.matches(key):
            raise ValueError("the key does not match the scrypt line it should replace")
        return f"sha256${b64(digest(key))}${old.key_id}"


def read_keys_file(path: Path) -> tuple[list[StoredKey], list[ScryptLine]]:
    """The lines of ``API_KEYS_FILE``: ``sha256$`` keys and older ``scrypt$`` ones; blank lines and
    ``#`` comments are skipped. A bad line fails start-up with its number."""
    keys, legacy = [], []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        words = raw.split("#", 1)[0].split()
        line = words[0] if words else ""
        try:
            if line.startswith("scrypt$"):
                legacy.append(ScryptLine.parse(line))
            elif line:
                keys.append(StoredKey.parse(line))
        except ValueError as exc:
            raise ValueError(f"API_KEYS_FILE line {number}: {exc}") from None
    return keys, legacy


class KeyRing:
    """The keys a request may present. Empty: the API is open (no key needed)."""

    def __init__(self, keys: list[StoredKey], legacy: list[ScryptLine] | None = None) -> None:
        self.keys = keys
        self.legacy = legacy or []
        self._by_digest = {k.digest: k for k in keys}
        self._lock = threading.Lock()  # legacy successes are added from worker threads

    @classmethod
    def from_keys(cls, keys: list[str], keys_file: Path | None = None) -> KeyRing:
        stored, legacy = read_keys_file(keys_file) if keys_file else ([], [])
        if legacy:
            log.warning(
                "API_KEYS_FILE holds %d scrypt line(s): they still work, but each wrong key costs one scrypt "
                "per such line; give those clients new keys (python -m deployments.ingress.api_keys prints "
                "sha256$ lines) and remove the scrypt lines",
                len(legacy),
            )
        return cls([StoredKey.from_env(k) for k in keys] + stored, legacy)

    def __bool__(self) -> bool:
        return bool(self.keys or self.legacy)

    def __getstate__(self) -> dict[str, Any]:  # travels to the ingress replicas without its lock
        return {"keys": self.keys, "legacy": self.legacy}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["keys"], state["legacy"])  # type: ignore[misc]

    def lookup(self, presented: str) -> str | None:
        """The id of the key ``presented`` is, or ``None``: one SHA-256 and one dict lookup."""
        if not presented or len(presented) > MAX_KEY_CHARS:
            return None
        wanted = digest(presented)
        found = self._by_digest.get(wanted)
        return found.key_id if found is not None and hmac.compare_digest(found.digest, wanted) else None

    def verify_legacy(self, presented: str) -> str | None:
        """Blocking: scrypt over each ``scrypt$`` line. A key that verifies is remembered by its digest
        (successes only, so at most one entry per line), and ``lookup`` finds it from then on."""
        if not presented or len(presented) > MAX_KEY_CHARS:
            return None
        match = next((line for line in self.legacy if line.matches(presented)), None)
        if match is None:
            return None
        with self._lock:
            self._by_digest[digest(presented)] = StoredKey(digest(presented), match.key_id)
        return match.key_id

    def key_id(self, presented: str) -> str | None:
        """``lookup``, then the scrypt lines: blocking, for callers that have no failure budget to check."""
        return self.lookup(presented) or (self.verify_legacy(presented) if self.legacy else None)


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
    parser = argparse.ArgumentParser(prog="python -m deployments.ingress.api_keys", description=main.__doc__)
    parser.add_argument("--replace", metavar="SCRYPT_LINE", help="the key's old scrypt$ line: keep its key id")
    args = parser.parse_args()
    given = "" if sys.stdin.isatty() else sys.stdin.read().strip()
    if args.replace and not given:
        parser.error("--replace needs the key on stdin")
    key = given or secrets.token_urlsafe(32)
    if not given:
        sys.stdout.write(f"new key (give it to the client, keep it nowhere else): {key}\n")
    try:
        sys.stdout.write(StoredKey.line_for(key, args.replace) + "\n")
    except ValueError as exc:
        parser.error(str(exc))


if __name__ == "__main__":
    main()
