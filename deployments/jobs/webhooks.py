"""Webhook delivery: Standard Webhooks signatures, retries with backoff, a schedule that survives restarts.

When a job ends, its event (``{"type": "job.completed"|"job.failed"|"job.cancelled", "data": <job>}``)
is frozen into the job record with a ``webhook-id`` and the job is put on the ``vcs:webhooks`` schedule
(a sorted set by due time, in the broker's Redis). Any consumer replica claims due deliveries by
pushing their due time a lease ahead (``JobStore.claim``, so two replicas never take the same one), POSTs
them, and either records the delivery or schedules the next attempt. Signing is the
``standardwebhooks`` library's; the backoff is tenacity's exponential wait with jitter: 5, 10, 20 …
seconds (+ up to 1 s), so eight attempts span about eleven minutes (``configs.settings`` holds the
numbers, and refuses a ``JOBS_RETENTION_S`` that would delete a record before its last attempt).

Deliveries run on their own event loop thread, at most ``workers`` at once, apart from the consumer's
outbox sweeper and from each other: each attempt has one deadline and reads little of the answer
(``delivery.py``), so a slow or hostile receiver holds one slot for at most ``WEBHOOK_TIMEOUT_S`` and
never delays another job's webhook or the outbox. A replica claims only as many deliveries as it has
free slots, so nothing it claimed waits behind a busy receiver while its lease runs out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from types import SimpleNamespace

import redis
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook
from tenacity import wait_exponential_jitter

from configs.settings import WEBHOOK_BACKOFF_FIRST_S, WEBHOOK_BACKOFF_JITTER_S, WEBHOOK_BACKOFF_MAX_S
from deployments.contracts.jobs import JobView
from deployments.jobs.delivery import Attempt, http_client, post
from deployments.jobs.records import PREFIX, JobStore, now_iso

log = logging.getLogger("ray.serve")

SCHEDULE = f"{PREFIX}webhooks"
LEASE_S = 120.0  # a claimed delivery comes back to the schedule if its replica dies mid-attempt (> 60-s deadline)
WORKERS = 16  # deliveries in flight per replica
POLL_S = 0.5
BACKOFF = wait_exponential_jitter(
    multiplier=WEBHOOK_BACKOFF_FIRST_S, exp_base=2, jitter=WEBHOOK_BACKOFF_JITTER_S, max=WEBHOOK_BACKOFF_MAX_S
)


def signer(secret: SecretStr) -> Webhook:
    """``whsec_<base64>`` is base64 after the prefix (as the Standard Webhooks libraries read it); any
    other secret is used as its UTF-8 bytes."""
    value = secret.get_secret_value()
    return Webhook(value) if value.startswith("whsec_") else Webhook(value.encode())


def retry_delay(attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``."""
    return float(BACKOFF(SimpleNamespace(attempt_number=attempts)))  # type: ignore[arg-type]


class Webhooks:
    def __init__(
        self,
        store: JobStore,
        secret: SecretStr | None,
        max_attempts: int,
        timeout_s: float,
        hosts: frozenset[str],
        on_attempt: Callable[[str], None] = lambda outcome: None,
        workers: int = WORKERS,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        """``timeout_s`` is each attempt's whole deadline; ``verify`` the TLS trust (tests pass their CA)."""
        self.store, self.max_attempts, self.hosts, self.on_attempt = store, max_attempts, hosts, on_attempt
        self.timeout_s, self.workers = timeout_s, workers
        self.signer = signer(secret) if secret else None
        self.http = http_client(timeout_s, verify)
        self._lock = threading.Lock()
        self._in_flight, self._closed = 0, False
        self._poller: Future[None] | None = None
        self._loop = asyncio.new_event_loop()
        # Its own threads for name resolution and Redis calls (``asyncio.to_thread``): a delivery uses one
        # at a time, and a resolution that outlives its deadline may hold one more for a while.
        self._threads = ThreadPoolExecutor(2 * workers + 1, thread_name_prefix="webhook")
        self._loop.set_default_executor(self._threads)
        threading.Thread(target=self._loop.run_forever, name="webhook-deliveries", daemon=True).start()

    def schedule(self, job_id: str, url: str, event_type: str, data: JobView) -> None:
        """Freeze the event and put it on the schedule, due now (called once, when the job ends)."""
        state = {"url": url, "attempts": 0, "delivered_at": None, "last_error": None}
        event = json.dumps({"type": event_type, "data": {**data, "webhook": state}}, separators=(",", ":"))
        fields = {
            "webhook_event": event,
            "webhook_id": f"msg_{secrets.token_urlsafe(18)}",
            "webhook": json.dumps(state),
        }
        self.store.update(job_id, fields, SCHEDULE, time.time())

    def pending(self) -> int:
        return int(self.store.r.zcard(SCHEDULE))

    def start(self, interval_s: float = POLL_S) -> None:
        """Claim and deliver due webhooks every ``interval_s``, on the delivery thread, until ``close``."""
        self._poller = asyncio.run_coroutine_threadsafe(self._poll(interval_s), self._loop)

    def close(self) -> None:
        """Stop polling and delivering (idempotent); an attempt cut short is due again after its lease."""
        if self._closed:
            return
        self._closed = True
        if self._poller is not None:
            self._poller.cancel()
        try:
            asyncio.run_coroutine_threadsafe(self.http.aclose(), self._loop).result(timeout=5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._threads.shutdown(wait=False, cancel_futures=True)

    def run_due(self) -> list[Future[None]]:
        """Claim what is due (no more than the free delivery slots) and start delivering it; returns at
        once, with one future per delivery started."""
        with self._lock:
            free = self.workers - self._in_flight
            claimed = self.store.claim(SCHEDULE, LEASE_S, free) if free > 0 else []
            self._in_flight += len(claimed)
        return [asyncio.run_coroutine_threadsafe(self._deliver(job_id), self._loop) for job_id in claimed]

    async def _poll(self, interval_s: float) -> None:
        while True:
            try:
                await asyncio.to_thread(self.run_due)
            except Exception:
                log.exception("webhook poller (claiming due deliveries)")
            await asyncio.sleep(interval_s)

    async def _deliver(self, job_id: str) -> None:
        try:
            await self._attempt(job_id)
        except Exception:  # Redis failed: the claim's lease brings the delivery back
            log.exception("webhook delivery for job %s", job_id)
        finally:
            with self._lock:
                self._in_flight -= 1

    async def _attempt(self, job_id: str) -> None:
        key = JobStore._key(job_id)
        fields = await asyncio.to_thread(self.store.r.hmget, key, "webhook_event", "webhook_id", "webhook")
        event, webhook_id, state_raw = fields
        if not (event and webhook_id and state_raw):
            await asyncio.to_thread(self.store.r.zrem, SCHEDULE, job_id)
            return
        state = json.loads(state_raw)
        result = await self._post(state["url"], webhook_id, event)
        state["attempts"] += 1
        state["last_error"] = result.error
        self.on_attempt("delivered" if result.delivered else "retry" if result.retry else "failed")
        if result.delivered:
            state["delivered_at"] = now_iso()
        due = None
        if result.retry and state["attempts"] < self.max_attempts:
            due = time.time() + retry_delay(state["attempts"])
        if not await asyncio.to_thread(self.store.update, job_id, {"webhook": json.dumps(state)}, SCHEDULE, due):
            log.info("webhook %s for job %s: the record expired meanwhile, nothing recorded", webhook_id, job_id)
            return
        log.info("webhook %s for job %s: attempt %d, %s", webhook_id, job_id, state["attempts"],
                 "delivered" if result.delivered else result.error)  # fmt: skip

    async def _post(self, url: str, webhook_id: str, body: str) -> Attempt:
        if self.signer is None:
            return Attempt(False, False, "WEBHOOK_SECRET is not set")
        stamp = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(stamp.timestamp())),
            "webhook-signature": self.signer.sign(webhook_id, stamp, body),
        }
        return await post(self.http, url, self.hosts, headers, body.encode(), self.timeout_s)


def redis_client(url: str) -> redis.Redis:
    """A redis-py client for a Celery broker URL (``redis+socket://`` is redis-py's ``unix://``)."""
    client: redis.Redis = redis.Redis.from_url(
        url.replace("redis+socket://", "unix://", 1), socket_timeout=10, decode_responses=True
    )
    return client
