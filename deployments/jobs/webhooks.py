"""Webhook delivery: Standard Webhooks signatures, retries with backoff, a schedule that survives restarts.

When a job ends, its event (``{"type": "job.completed"|"job.failed"|"job.cancelled", "data": <job>}``)
is frozen into the job record with a ``webhook-id`` and the job is put on the ``vcs:webhooks`` schedule
(a sorted set by due time, in the broker's Redis). Any consumer replica claims due deliveries by
pushing their due time a lease ahead (``JobStore.claim``, so two replicas never take the same one), POSTs
them, and either records the delivery or schedules the next attempt. Signing is the
``standardwebhooks`` library's; the backoff is tenacity's exponential wait with jitter: 5, 10, 20 …
seconds (+ up to 1 s), so eight attempts span about eleven minutes.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import httpx
import redis
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook
from tenacity import wait_exponential_jitter

from deployments.contracts.errors import InvalidWebhookError
from deployments.contracts.webhook_targets import check_webhook_url
from deployments.jobs.records import PREFIX, JobStore, now_iso

log = logging.getLogger("ray.serve")

SCHEDULE = f"{PREFIX}webhooks"
LEASE_S = 120.0  # a claimed delivery comes back to the schedule if its replica dies mid-attempt
BACKOFF = wait_exponential_jitter(multiplier=5, exp_base=2, jitter=1, max=3600)


def signer(secret: SecretStr) -> Webhook:
    """``whsec_<base64>`` is base64 after the prefix (as the Standard Webhooks libraries read it); any
    other secret is used as its UTF-8 bytes."""
    value = secret.get_secret_value()
    return Webhook(value) if value.startswith("whsec_") else Webhook(value.encode())


def retry_delay(attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``."""
    return float(BACKOFF(SimpleNamespace(attempt_number=attempts)))  # type: ignore[arg-type]


def retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


@dataclass(frozen=True)
class Attempt:
    delivered: bool
    retry: bool
    error: str | None = None


class Webhooks:
    def __init__(
        self,
        store: JobStore,
        secret: SecretStr | None,
        max_attempts: int,
        timeout_s: float,
        hosts: frozenset[str],
        on_attempt: Callable[[str], None] = lambda outcome: None,
    ) -> None:
        self.store, self.max_attempts, self.hosts, self.on_attempt = store, max_attempts, hosts, on_attempt
        self.signer = signer(secret) if secret else None
        self.http = httpx.Client(timeout=timeout_s, follow_redirects=False)

    def schedule(self, job_id: str, url: str, event_type: str, data: dict[str, Any]) -> None:
        """Freeze the event and put it on the schedule, due now (called once, when the job ends)."""
        state = {"url": url, "attempts": 0, "delivered_at": None, "last_error": None}
        event = json.dumps({"type": event_type, "data": {**data, "webhook": state}}, separators=(",", ":"))
        key = JobStore._key(job_id)
        pipe = self.store.r.pipeline(transaction=True)
        pipe.hset(key, mapping={"webhook_event": event, "webhook_id": f"msg_{secrets.token_urlsafe(18)}"})
        pipe.hset(key, "webhook", json.dumps(state))
        pipe.zadd(SCHEDULE, {job_id: time.time()})
        pipe.execute()

    def pending(self) -> int:
        return int(self.store.r.zcard(SCHEDULE))

    def run_due(self, limit: int = 8) -> int:
        """Deliver what is due now; returns how many attempts were made."""
        claimed = self.store.claim(SCHEDULE, LEASE_S, limit)
        for raw in claimed:
            self._deliver(raw)
        return len(claimed)

    def _deliver(self, job_id: str) -> None:
        key = JobStore._key(job_id)
        fields: list[str | None] = self.store.r.hmget(key, "webhook_event", "webhook_id", "webhook")
        event, webhook_id, state_raw = fields
        if not (event and webhook_id and state_raw):
            self.store.r.zrem(SCHEDULE, job_id)
            return
        state = json.loads(state_raw)
        result = self._post(state["url"], webhook_id, event)
        state["attempts"] += 1
        state["last_error"] = result.error
        self.on_attempt("delivered" if result.delivered else "retry" if result.retry else "failed")
        if result.delivered:
            state["delivered_at"] = now_iso()
        pipe = self.store.r.pipeline(transaction=True)
        pipe.hset(key, "webhook", json.dumps(state))
        if result.retry and state["attempts"] < self.max_attempts:
            pipe.zadd(SCHEDULE, {job_id: time.time() + retry_delay(state["attempts"])})
        else:
            pipe.zrem(SCHEDULE, job_id)
        pipe.execute()
        log.info("webhook %s for job %s: attempt %d, %s", webhook_id, job_id, state["attempts"],
                 "delivered" if result.delivered else result.error)  # fmt: skip

    def _post(self, url: str, webhook_id: str, body: str) -> Attempt:
        if self.signer is None:
            return Attempt(False, False, "WEBHOOK_SECRET is not set")
        try:
            check_webhook_url(url, self.hosts)  # again: the name may resolve elsewhere now
        except InvalidWebhookError as exc:
            return Attempt(False, False, exc.message)
        stamp = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(stamp.timestamp())),
            "webhook-signature": self.signer.sign(webhook_id, stamp, body),
        }
        try:
            response = self.http.post(url, content=body.encode(), headers=headers)
        except httpx.HTTPError as exc:
            return Attempt(False, True, f"{type(exc).__name__}: {exc}"[:300])
        if response.is_success:
            return Attempt(True, False)
        return Attempt(False, retryable(response.status_code), f"HTTP {response.status_code}")


def redis_client(url: str) -> redis.Redis:
    """A redis-py client for a Celery broker URL (``redis+socket://`` is redis-py's ``unix://``)."""
    client: redis.Redis = redis.Redis.from_url(
        url.replace("redis+socket://", "unix://", 1), socket_timeout=10, decode_responses=True
    )
    return client
