"""Helpers of the jobs tests: the signing secret, a recorded job with its webhook due, delivering it."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from deployments.jobs.deployment import TASK
from deployments.jobs.records import Item, Job, JobStore, now_iso
from deployments.jobs.webhooks import Webhooks

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
LOCAL = frozenset({"127.0.0.1"})


def schedule(store: JobStore, w: Webhooks, job_id: str, url: str, event_type: str = "job.completed") -> None:
    """A recorded job that ended, its webhook due now."""
    items = [Item(0, "a.png", f"jobs/{job_id}/0000.png", status="success")]
    store.create(Job(job_id, 1, now_iso(), now_iso(), webhook_url=url, items=items), send_after_s=3600)
    w.schedule(job_id, url, event_type, {"job_id": job_id, "status": event_type.removeprefix("job.")})


def deliver_all(w: Webhooks, rounds: int = 10) -> None:
    """Claim and deliver until nothing is due (retries are due at once under ``no_backoff_wait``)."""
    for _ in range(rounds):
        for delivery in w.run_due():
            delivery.result(timeout=60)
        if not w.pending():
            return
        time.sleep(0.05)


def state(store: JobStore, job_id: str) -> dict[str, object]:
    return dict(json.loads(store.r.hget(JobStore._key(job_id), "webhook")))


class Queue:
    """The broker adapter's enqueue, recording what was sent (or refusing while ``up`` is false)."""

    def __init__(self) -> None:
        self.up, self.sent = True, list[tuple[Any, ...]]()

    def enqueue_task_sync(self, name: str, args: list[Any]) -> None:
        if not self.up:
            raise ConnectionError("the queue refused it")
        assert name == TASK
        self.sent.append(tuple(args))
