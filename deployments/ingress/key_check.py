"""Checking a presented API key so that wrong keys cost nothing and are limited per client address.

Order, per request with a key:

1. the address's failure budget (``AUTH_FAILURE_LIMIT``, e.g. ``10/minute``) is read, counting
   nothing: past it the answer is 429 ``rate_limited`` with ``Retry-After`` before any hashing;
2. the key is looked up (one SHA-256, one dict lookup); only on a miss, and only when
   ``API_KEYS_FILE`` still holds ``scrypt$`` lines, is scrypt run (off the event loop);
3. a wrong key is counted against the address with the limiter's atomic ``hit``, and that answer
   decides between 401 and 429.

Step 1 is a read, so requests from one address that are in flight together may each pass it; step 3
is exact, so at most those in-flight requests get past the budget, and scrypt runs at most once per
legacy line for each of them. A missing key is answered 401 without counting: it costs nothing, and a
page that loads before its user typed a key must not spend the budget the key will need.
"""

from __future__ import annotations

import asyncio

from deployments.contracts.errors import KeyFailuresError, ServiceError, UnauthorizedError
from deployments.ingress.api_keys import KeyRing
from deployments.ingress.ratelimit import Decision, Limiter


class KeyCheck:
    def __init__(self, keys: KeyRing, failures: Limiter) -> None:
        self.keys = keys
        self.failures = failures

    async def key_id(self, presented: str, address: str) -> str:
        """The id of the presented key, or the refusal to answer with (raised)."""
        if not presented:
            raise UnauthorizedError()
        identity = f"authfail:{address}"
        if (spent := await self.failures.refusal(identity)) is not None:
            raise self._refusal(spent)
        found = self.keys.lookup(presented)
        if found is None and self.keys.legacy:
            found = await asyncio.to_thread(self.keys.verify_legacy, presented)
        if found is not None:
            return found
        counted = await self.failures.hit(identity)
        if counted is not None and not counted.allowed:
            raise self._refusal(counted)
        raise UnauthorizedError()

    def _refusal(self, decision: Decision) -> ServiceError:
        return KeyFailuresError(self.failures.spec, decision.reset_s)
