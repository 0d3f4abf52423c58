"""The jobs deployment: accepts jobs from the ingress, consumes their items from the broker (Ray Serve
asynchronous inference: ``@task_consumer`` / ``@task_handler`` over Celery), and delivers webhooks.

Each item is one task (``process_item(job_id, index)``), so a job's items spread over every consumer
replica and a redelivery repeats one image, not a job. Delivery is at least once (Celery's late acks,
redelivery after ``JOBS_VISIBILITY_TIMEOUT_S`` when a consumer dies, unacked messages requeued on a
clean stop); never twice in effect, because an item that ended never changes again (``records.py``)
and a re-run stores nothing new (content-addressed keys). Celery runs handlers on its own threads; they
run the shared flow on this replica's event-loop thread (``_loop``), where its handles live.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from ray import serve
from ray.serve.schema import CeleryAdapterConfig, TaskProcessorConfig
from ray.serve.task_consumer import task_consumer, task_handler

from configs.settings import Settings
from deployments.contracts.errors import JobsUnavailableError, UploadRejectedError, as_service_error
from deployments.contracts.handles import StorageHandle, UpscalerHandle
from deployments.contracts.jobs import ENDED, JSON, ItemStatus, JobView
from deployments.contracts.results import UploadResult
from deployments.contracts.values import NewJob, StoredObject
from deployments.flow.flow import Flow, Upload
from deployments.jobs.metrics import JobsMetrics
from deployments.jobs.records import UNSENT, UNSENT_GRACE_S, Item, Job, JobStore, final_status, now_iso
from deployments.jobs.webhooks import Webhooks, redis_client

log = logging.getLogger("ray.serve")

QUEUE = "upscaler-jobs"
TASK = "process_item"
MAX_ITEM_ATTEMPTS = 4  # the flow's own failures (storage down) are retried this often, then the item errs
R = TypeVar("R")


def task_processor_config(settings: Settings) -> TaskProcessorConfig:
    broker_url = settings.jobs_broker()
    return TaskProcessorConfig(
        queue_name=QUEUE,
        max_retries=MAX_ITEM_ATTEMPTS,
        adapter_config=CeleryAdapterConfig(
            broker_url=broker_url,
            backend_url=broker_url,
            broker_transport_options={
                "visibility_timeout": settings.jobs_visibility_timeout_s,
                # Look for items of dead consumers every few seconds, not every 100 (kombu's default).
                "unacked_restore_interval": 5,
                "unacked_restore_throttle": 1,
            },
            app_custom_config={
                "worker_prefetch_multiplier": 1,  # an idle replica takes the next item, not a busy one
                "broker_connection_retry_on_startup": True,
                "worker_hijack_root_logger": False,
                "result_expires": 3600,
            },
        ),
    )


class JobsConsumer:
    def __init__(
        self, upscaler: UpscalerHandle, storage: StorageHandle, settings: Settings, broker: Any = None
    ) -> None:
        """``broker`` is the embedded broker's handle when there is one: bound here so Serve runs it."""
        self.storage = storage
        self.settings = settings
        self.flow = Flow(upscaler, storage, settings)
        self.store = JobStore(redis_client(settings.jobs_broker()), settings.jobs_retention_s)
        self.store.wait_until_ready()  # before Celery's worker starts (right after this constructor)
        self.metrics = JobsMetrics()
        self.webhooks = Webhooks(
            self.store,
            settings.webhook_secret,
            settings.webhook_max_attempts,
            settings.webhook_timeout_s,
            settings.webhook_hosts,
            self.metrics.webhook_attempt,
        )
        self._loop = asyncio.new_event_loop()
        self._stopping = threading.Event()
        threading.Thread(target=self._loop.run_forever, name="jobs-flow", daemon=True).start()
        threading.Thread(target=self._dispatch, name="jobs-dispatch", daemon=True).start()
        self.webhooks.start()  # deliveries poll and run on their own thread and slots, apart from the outbox

    # --- the ingress's calls (through a handle) ---------------------------------------------------

    async def submit(self, new: NewJob) -> JobView:
        """Store the inputs, record the job, enqueue its items; the job as the API shows it. A job that
        could not be recorded leaves no input behind; one recorded is accepted, even if enqueueing its
        items failed: the outbox sweeper (``_send_unsent``) sends them."""
        job_id = secrets.token_urlsafe(18)
        stored = await self._store_inputs(job_id, new)
        now = now_iso()
        items = [Item(i, f.filename or "", s.key) for i, (f, s) in enumerate(zip(new.files, stored, strict=True))]
        job = Job(job_id, len(items), now, now, new.model, new.format, new.webhook_url, new.owner, items=items)
        try:
            await asyncio.to_thread(self.store.create, job)
        except Exception as exc:
            await self._delete_inputs([i.input_key for i in items])
            raise JobsUnavailableError(type(exc).__name__) from exc
        self.metrics.submitted(len(items))
        await asyncio.to_thread(self._send, job_id, [i.index for i in items])
        return job.view()

    async def _store_inputs(self, job_id: str, new: NewJob) -> list[StoredObject]:
        """Every input stored, or none: when one fails, those already stored are deleted."""
        results = await asyncio.gather(
            *(self.storage.put_job_input.remote(job_id, i, f.image) for i, f in enumerate(new.files)),
            return_exceptions=True,
        )
        stored = [r for r in results if not isinstance(r, BaseException)]
        if len(stored) < len(results):
            await self._delete_inputs([s.key for s in stored])
            raise next(r for r in results if isinstance(r, BaseException))
        return stored

    async def _delete_inputs(self, keys: list[str]) -> None:
        """Job inputs, deleted at once (a failure is logged and that file stays)."""
        results = await asyncio.gather(*(self.storage.delete_job_input.remote(k) for k in keys), return_exceptions=True)
        for key, result in zip(keys, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("job input %s was not deleted: %s", key, result)

    def _send(self, job_id: str, indices: list[int]) -> None:
        """Enqueue these items and take the job off the outbox; on failure it stays there (logged)."""
        try:
            for index in indices:
                self._adapter.enqueue_task_sync(TASK, args=[job_id, index])  # type: ignore[attr-defined]
            self.store.sent(job_id)
        except Exception:
            log.exception("job %s: enqueueing its items failed; the outbox sweeper sends them later", job_id)

    def _send_unsent(self) -> None:
        """Send the pending items of jobs left on the outbox past its grace (their submitter died or
        failed to enqueue): a pending item's extra task finds it no longer pending and does nothing."""
        if getattr(self, "_adapter", None) is None:
            return  # Serve gives the consumer its broker adapter only after this constructor returned
        for job_id in self.store.claim(UNSENT, lease_s=UNSENT_GRACE_S):
            job = self.store.get(job_id)
            pending = [i.index for i in job.items if i.status == ItemStatus.PENDING] if job else []
            log.warning("job %s was left on the outbox: sending its %d pending items", job_id, len(pending))
            self._send(job_id, pending)

    async def get(self, job_id: str, owner: str = "") -> JobView | None:
        job = await asyncio.to_thread(self.store.get, job_id)
        return job.view() if job and job.owner == owner else None

    async def list_jobs(
        self, limit: int, cursor: float | None, owner: str | None = ""
    ) -> tuple[list[JobView], float | None]:
        """Newest first from ``cursor``; ``owner`` None lists every key's jobs (the stats summary)."""
        jobs, next_cursor = await asyncio.to_thread(self.store.list, limit, cursor, owner)
        return [j.view() for j in jobs], next_cursor

    async def cancel(self, job_id: str, owner: str = "") -> JobView | None:
        return await asyncio.to_thread(self._cancel, job_id, owner)

    async def queue_depth(self) -> int:
        return await asyncio.to_thread(self._queue_depth)

    # --- the consumer ---------------------------------------------------------------------------

    @task_handler(name=TASK)
    def process_item(self, job_id: str, index: int) -> str:
        job = self.store.get(job_id)
        if job is None or index >= len(job.items):
            log.warning("job %s item %d: no such item, dropped", job_id, index)
            return "missing"
        item = job.items[index]
        if item.status in ENDED:  # a redelivery of finished work: only its input may be left
            self._forget_inputs([item])
            return item.status
        item.status, item.attempts = ItemStatus.RUNNING, item.attempts + 1
        if not self.store.move(job_id, item, (ItemStatus.PENDING, ItemStatus.RUNNING)):
            return "skipped"  # cancelled meanwhile
        try:
            item.status, item.result = self._run(self._process(job, item))
        except UploadRejectedError as exc:  # the image itself: trying again cannot help
            item.status, item.error = ItemStatus.ERROR, {"code": exc.code, "message": exc.message}
        except Exception as exc:
            if item.attempts < MAX_ITEM_ATTEMPTS:
                raise  # Celery retries with backoff; the item stays running
            code = as_service_error(exc).code
            item.status, item.error = ItemStatus.ERROR, {"code": code, "message": f"{type(exc).__name__}: {exc}"[:500]}
        self.store.move(job_id, item, (ItemStatus.RUNNING,))
        self.metrics.item(item.status)
        self._forget_inputs([item])
        self._maybe_finish(job_id, job.total)
        return item.status

    def _forget_inputs(self, items: list[Item]) -> None:
        """Delete ended items' inputs, all at once: each outcome is stored under its own key (or the item
        was cancelled). A failure leaves that file behind (logged); a redelivery of its task tries again."""
        self._run(self._delete_inputs([item.input_key for item in items]))

    async def _process(self, job: Job, item: Item) -> tuple[ItemStatus, dict[str, JSON]]:
        data = await self.storage.get.remote(item.input_key)
        upload = Upload(data, item.filename, f"{job.job_id}/{item.index}", job.model, job.format, job.owner or None)
        outcome = await self.flow.process(upload)
        self.metrics.quality(outcome.quality_metrics, outcome.route, outcome.model)
        return ItemStatus(outcome.status.value), UploadResult.of(outcome, upload.request_id).model_dump(mode="json")

    def _run(self, coroutine: Coroutine[Any, Any, R]) -> R:
        future: Future[R] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result()

    def _maybe_finish(self, job_id: str, total: int) -> None:
        if not self.store.all_ended(job_id, total):
            return
        job = self.store.get(job_id)
        if job is None or not self.store.finalize(job_id, final_status(job)):
            return  # another replica finished it
        job.final_status = final_status(job)
        self.metrics.job_ended(job.final_status, job.created_at)
        log.info("job %s %s: %d/%d items failed", job_id, job.final_status, job.failed, job.total)
        if job.webhook_url:
            self.webhooks.schedule(job_id, job.webhook_url, f"job.{job.final_status}", job.view())

    def _cancel(self, job_id: str, owner: str) -> JobView | None:
        job = self.store.get(job_id)
        if job is None or job.owner != owner:
            return None
        if job.final_status is None:
            self.store.request_cancel(job_id)
            cancelled = []
            for item in job.items:
                if item.status == ItemStatus.PENDING:
                    item.status = ItemStatus.CANCELLED
                    if self.store.move(job_id, item, (ItemStatus.PENDING,)):
                        cancelled.append(item)
            self._forget_inputs(cancelled)
            self._maybe_finish(job_id, job.total)
        job = self.store.get(job_id)
        return job.view() if job else None

    def _queue_depth(self) -> int:
        return int(self.store.r.llen(QUEUE))

    def _dispatch(self) -> None:
        """Every half second: send the jobs left on the outbox and report the queues. Webhooks are not
        delivered here (``Webhooks.start``): a slow receiver must not hold the outbox."""
        while not self._stopping.wait(0.5):
            try:
                self._send_unsent()
                self.metrics.queue(self._queue_depth(), self.webhooks.pending())
            except Exception:
                log.exception("jobs dispatcher (outbox, queue metrics)")
                time.sleep(2)

    def check_health(self) -> None:
        self.store.r.ping()  # the broker answers (raises otherwise: Serve replaces this replica)

    def __del__(self) -> None:
        self._stopping.set()
        if webhooks := getattr(self, "webhooks", None):
            webhooks.close()


def consumer_deployment(settings: Settings) -> Any:
    """The consumer class as a Serve deployment: ``@task_consumer`` needs the broker, known only now."""
    consumer = task_consumer(task_processor_config=task_processor_config(settings))(JobsConsumer)
    return serve.deployment(name="JobsConsumer", ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=4)(consumer)
