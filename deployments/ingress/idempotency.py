"""``Idempotency-Key`` on the routes that create something (``POST /api/images/upload``, ``POST /api/jobs``),
as the IETF draft "The Idempotency-Key HTTP Header Field" describes it.

- The first request with a key claims it (Redis ``SET NX``: atomic across replicas), runs, and its
  answer (status, JSON body, ``Location``) is kept for 24 hours under the key.
- The same key with the same body within that day gets the kept answer again, marked
  ``Idempotent-Replayed: true``; nothing runs twice (one job, one stored result).
- The same key with another body is refused: 422 ``idempotency_key_reused`` (the draft's answer).
- The same key while the first request still runs: 409 ``idempotency_key_in_flight`` with ``Retry-After``
  (the draft's answer for a concurrent request); the client retries and gets the replay.
- A request that is refused or fails keeps nothing: its key is released, so a retry runs again (a 503
  "retry later" must be retryable). A replica that dies mid-request leaves a claim that expires after
  ``PENDING_S``.

A key belongs to the API key that sent it (its id) and to the route: another API key using the same value
is another request. The body's fingerprint is a SHA-256 over the parsed multipart parts (every field's
value, every file's name and bytes), not the raw body, whose boundary changes with every send.

Kept here rather than taken from a library: the candidates on PyPI (``fastapi-idempotency-key`` 0.1.1,
``fastapi-idempotency`` 0.1.1, ``asgi-idempotency-header`` 0.2.0) hash the raw body (a retried multipart
upload never matches), scope keys by nothing but the key, and are months-old 0.x releases.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import redis.asyncio as aioredis
from fastapi import Header, Request, UploadFile
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from deployments.contracts.errors import (
    IdempotencyKeyInFlightError,
    IdempotencyKeyReusedError,
    IdempotencyUnavailableError,
    InvalidParameterError,
)
from deployments.ingress.api_keys import request_key_id
from deployments.ingress.shared_redis import NAMESPACE

log = logging.getLogger("ray.serve")
HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEPT_S = 24 * 3600  # how long an answer is replayed
PENDING_S = 600  # how long a claim outlives a replica that died before answering (past any upload's deadline)
MAX_KEY_LENGTH = 255
KEPT_HEADERS = ("location",)
# The header as OpenAPI documents it on the routes that take it (``Idempotency`` reads the request itself).
IDEMPOTENCY_KEY = Header(
    None,
    alias=HEADER,
    description="Any unique string (a UUID): the same key and body within 24 hours get the same answer, "
    f"marked {REPLAYED}: true; the key with another body is refused (422), while the first runs 409",
)


@dataclass(frozen=True)
class Answer:
    """A claim (``status`` None: the first request still runs) or the answer it gave."""

    fingerprint: str
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class AnswerStore(Protocol):
    async def claim(self, key: str, fingerprint: str) -> Answer | None:
        """Claim ``key`` for a request with this fingerprint: None when claimed now, else what it holds."""

    async def keep(self, key: str, answer: Answer) -> None: ...

    async def release(self, key: str) -> None: ...


class RedisAnswers:
    """Claims and answers in the broker's Redis: one ``SET NX`` decides between replicas."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def claim(self, key: str, fingerprint: str) -> Answer | None:
        claimed = json.dumps(asdict(Answer(fingerprint)))
        if await self.client.set(key, claimed, nx=True, ex=PENDING_S):
            return None
        raw = await self.client.get(key)
        if raw is None:  # expired between the two calls: claim it again
            return await self.claim(key, fingerprint)
        return Answer(**json.loads(raw))

    async def keep(self, key: str, answer: Answer) -> None:
        await self.client.set(key, json.dumps(asdict(answer)), ex=KEPT_S)

    async def release(self, key: str) -> None:
        await self.client.delete(key)


class MemoryAnswers:
    """The same in this process (the in-process app has no broker): atomic on the event loop."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.answers: dict[str, tuple[float, Answer]] = {}

    async def claim(self, key: str, fingerprint: str) -> Answer | None:
        held = self.answers.get(key)
        if held is not None and held[0] > self.clock():
            return held[1]
        self.answers[key] = (self.clock() + PENDING_S, Answer(fingerprint))
        return None

    async def keep(self, key: str, answer: Answer) -> None:
        self.answers[key] = (self.clock() + KEPT_S, answer)

    async def release(self, key: str) -> None:
        self.answers.pop(key, None)


def key_of(request: Request) -> str | None:
    """The request's Idempotency-Key (a structured-field string, quotes optional); None when absent."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not 0 < len(value) <= MAX_KEY_LENGTH or not value.isascii() or not value.isprintable():
        raise InvalidParameterError(f"{HEADER}: 1 to {MAX_KEY_LENGTH} printable ASCII characters (a UUID does)")
    return value


async def fingerprint(route: str, fields: Mapping[str, str | None], files: Sequence[UploadFile]) -> str:
    """SHA-256 over the parsed parts: the route, every field's value, every file's name and bytes (read,
    then rewound for the route)."""
    digest = hashlib.sha256(route.encode())
    for name, value in sorted(fields.items()):
        digest.update(json.dumps([name, value]).encode())
    for upload in files:
        data = await upload.read()
        await upload.seek(0)
        digest.update(json.dumps([upload.filename, hashlib.sha256(data).hexdigest()]).encode())
    return digest.hexdigest()


class Idempotency:
    def __init__(self, store: AnswerStore) -> None:
        self.store = store

    async def answer(
        self, request: Request, body: Callable[[], Awaitable[str]], run: Callable[[], Awaitable[JSONResponse]]
    ) -> JSONResponse:
        """``run()``'s answer, once per key and body: replayed, refused, or run and kept. ``body`` gives
        the request's fingerprint (computed only when the request carries a key)."""
        key = key_of(request)
        if key is None:
            return await run()
        owner = request_key_id(request) or "-"
        scoped = f"{NAMESPACE}:idempotency:{owner}:{request.url.path}:{hashlib.sha256(key.encode()).hexdigest()}"
        fp = await body()
        held = await self._claim(scoped, fp)
        if held is not None:
            return _replay(held, fp)
        try:
            response = await run()
        except BaseException:
            await self._release(scoped)
            raise
        if response.status_code >= 300:  # only what was done is replayed
            await self._release(scoped)
            return response
        headers = {name: response.headers[name] for name in KEPT_HEADERS if name in response.headers}
        try:
            await self.store.keep(scoped, Answer(fp, response.status_code, json.loads(bytes(response.body)), headers))
        except (RedisError, OSError) as exc:  # done all the same: answer it (a retry gets 409 until PENDING_S)
            log.warning("Idempotency-Key answer not kept: %s", type(exc).__name__)
        return response

    async def _claim(self, key: str, fp: str) -> Answer | None:
        try:
            return await self.store.claim(key, fp)
        except (RedisError, OSError) as exc:
            raise IdempotencyUnavailableError(type(exc).__name__) from exc

    async def _release(self, key: str) -> None:
        with contextlib.suppress(RedisError, OSError):  # else the claim expires after PENDING_S
            await self.store.release(key)


def _replay(held: Answer, fp: str) -> JSONResponse:
    if held.fingerprint != fp:
        raise IdempotencyKeyReusedError()
    if held.status is None:
        raise IdempotencyKeyInFlightError()
    return JSONResponse(held.body, status_code=held.status, headers={**held.headers, REPLAYED: "true"})


def idempotency(client: aioredis.Redis | None) -> Idempotency:
    """Keys in the broker's Redis (shared by every replica), or in this process without one."""
    return Idempotency(RedisAnswers(client) if client is not None else MemoryAnswers())
