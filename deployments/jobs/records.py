"""Job records in Redis (the broker's own server, so records and queue share its durability).

Layout, all under ``vcs:``: ``job:<id>`` a hash of the job's fields; ``job:<id>:items`` a hash of item
index → item JSON; ``job:<id>:ended`` a set of ended indices (``done`` is its size, so a redelivered
item can never count twice); ``jobs`` a sorted set of ids by creation time (listing, newest first);
``webhooks`` a sorted set of job ids by the time their next delivery is due; ``unsent`` (the outbox) a
sorted set of the jobs whose items may not all be on the queue yet, by the time a sweeper sends them.

A job is recorded and put on the outbox in one transaction, before its items are enqueued; the
submitter takes it off once every item is on the queue. A submitter that died in between (or whose
enqueue failed) leaves it there, and any consumer replica sends the pending items after the grace
period (``claim``). Sending an item twice is harmless: the second task finds it no longer pending.

Item transitions are compare-and-set in Lua scripts: ``pending → running → success|error`` and
``pending → cancelled``; an item that ended never changes again, whatever the queue redelivers.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from deployments.contracts.jobs import ENDED, JSON, ItemError, ItemStatus, ItemView, JobStatus, JobView

PREFIX = "vcs:"
UNSENT = f"{PREFIX}unsent"
UNSENT_GRACE_S = 60.0  # a submitter enqueues a job's items in milliseconds; after this, a sweeper does

# KEYS: a sorted set of ids by due time. ARGV: now, the lease's end, how many. The due ids, each pushed
# a lease ahead in the same step: two replicas never take the same one, and a taker that dies mid-way
# leaves it due again when the lease ends.
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return due
"""

# KEYS: items hash, ended set, job hash. ARGV: index, expected statuses (comma list), new item JSON,
# new status, now. Returns 1 when the transition happened.
_TRANSITION = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local item = cjson.decode(raw)
local allowed = false
for s in string.gmatch(ARGV[2], '[^,]+') do if item['status'] == s then allowed = true end end
if not allowed then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
if ARGV[4] == 'success' or ARGV[4] == 'error' or ARGV[4] == 'cancelled' then
  redis.call('SADD', KEYS[2], ARGV[1])
end
redis.call('HSET', KEYS[3], 'updated_at', ARGV[5])
return 1
"""

# KEYS: a job hash, then optionally a sorted set (a schedule). ARGV: the job id, its new score there ('' to
# take it off), then field/value pairs. The fields are written only while the record exists: a record
# that expired meanwhile is not brought back as a hash of a few fields (which no reader could parse), and
# the job leaves the schedule. Writing to an existing hash keeps its expiry. Returns 1 when written.
_UPDATE = """
local exists = redis.call('EXISTS', KEYS[1]) == 1
if exists then redis.call('HSET', KEYS[1], unpack(ARGV, 3)) end
if KEYS[2] then
  if exists and ARGV[2] ~= '' then redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
  else redis.call('ZREM', KEYS[2], ARGV[1]) end
end
return exists and 1 or 0
"""


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Item:
    index: int
    filename: str
    input_key: str
    status: ItemStatus = ItemStatus.PENDING
    result: dict[str, JSON] | None = None
    error: ItemError | None = None
    attempts: int = 0

    def __post_init__(self) -> None:
        self.status = ItemStatus(self.status)  # read back from JSON as a plain string

    def view(self) -> ItemView:
        return {
            "index": self.index,
            "filename": self.filename,
            "status": self.status,
            "result": self.result,
            "error": self.error,
        }


@dataclass
class Job:
    job_id: str
    total: int
    created_at: str
    updated_at: str
    model: str | None = None
    format: str | None = None
    webhook_url: str | None = None
    owner: str = ""
    cancel_requested: bool = False
    final_status: JobStatus | None = None
    webhook: dict[str, JSON] | None = None
    items: list[Item] = field(default_factory=list)

    @property
    def done(self) -> int:
        return sum(i.status in ENDED for i in self.items)

    @property
    def failed(self) -> int:
        return sum(i.status == ItemStatus.ERROR for i in self.items)

    @property
    def status(self) -> JobStatus:
        if self.final_status:
            return self.final_status
        if any(i.status == ItemStatus.RUNNING for i in self.items) or (self.done and not self.cancel_requested):
            return JobStatus.RUNNING
        return JobStatus.CANCELLED if self.cancel_requested else JobStatus.QUEUED

    def view(self) -> JobView:
        """The job as the API shows it."""
        return {
            "job_id": self.job_id,
            "status": self.status,
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "model": self.model,
            "format": self.format,
            "items": [i.view() for i in self.items],
            "webhook": self.webhook or self._webhook_before_delivery(),
        }

    def _webhook_before_delivery(self) -> dict[str, JSON] | None:
        if not self.webhook_url:
            return None
        return {"url": self.webhook_url, "attempts": 0, "delivered_at": None, "last_error": None}


def final_status(job: Job) -> JobStatus:
    """A job whose items have all ended: cancelled if it was asked to, failed if nothing succeeded."""
    if job.cancel_requested:
        return JobStatus.CANCELLED
    return JobStatus.FAILED if all(i.status == ItemStatus.ERROR for i in job.items) else JobStatus.COMPLETED


class JobStore:
    def __init__(self, client: redis.Redis, retention_s: int | None = None) -> None:
        """``client`` must decode responses (``decode_responses=True``): every value here is text.
        Held as ``Any``: redis-py's annotations change between releases (sync and async in one union).
        A finished job's record is deleted by Redis ``retention_s`` after it ended (never, with None)."""
        self.r: Any = client
        self.retention_s = retention_s
        self._transition = client.register_script(_TRANSITION)
        self._claim = client.register_script(_CLAIM)
        self._update = client.register_script(_UPDATE)

    def wait_until_ready(self, timeout_s: float = 60.0) -> None:
        """Block until the broker answers (the embedded one may still be starting beside us)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.r.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    @staticmethod
    def _key(job_id: str, suffix: str = "") -> str:
        return f"{PREFIX}job:{job_id}{suffix}"

    def create(self, job: Job, send_after_s: float = UNSENT_GRACE_S) -> None:
        """Record ``job`` and put it on the outbox, due for a sweeper ``send_after_s`` from now."""
        fields: dict[str, str | int] = {
            "job_id": job.job_id,
            "total": job.total,
            "created_at": job.created_at,
            "updated_at": job.updated_at,
            "model": job.model or "",
            "format": job.format or "",
            "webhook_url": job.webhook_url or "",
            "owner": job.owner,
        }
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self._key(job.job_id), mapping=fields)
        pipe.hset(self._key(job.job_id, ":items"), mapping={str(i.index): json.dumps(asdict(i)) for i in job.items})
        pipe.zadd(f"{PREFIX}jobs", {job.job_id: time.time()})
        pipe.zadd(UNSENT, {job.job_id: time.time() + send_after_s})
        pipe.execute()

    def sent(self, job_id: str) -> None:
        """Every item of ``job_id`` is on the queue: off the outbox."""
        self.r.zrem(UNSENT, job_id)

    def claim(self, schedule: str, lease_s: float, limit: int = 8) -> list[str]:
        """Ids due on ``schedule`` (a sorted set by due time), each leased to the caller for ``lease_s``."""
        now = time.time()
        return list(self._claim(keys=[schedule], args=[now, now + lease_s, limit]))

    def get(self, job_id: str) -> Job | None:
        return self._get_many([job_id])[0]

    def _get_many(self, job_ids: list[str]) -> list[Job | None]:
        """Jobs by id in one round trip (two hashes each), ``None`` for ids that no longer exist."""
        pipe = self.r.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(self._key(job_id))
            pipe.hgetall(self._key(job_id, ":items"))
        replies = pipe.execute()
        return [_job(raw, items) for raw, items in zip(replies[::2], replies[1::2], strict=True)]

    def list(self, limit: int, before: float | None = None, owner: str | None = None) -> tuple[list[Job], float | None]:
        """Newest first; ``before`` is the cursor (a creation time) the previous page returned. One round
        trip for the page of ids and one for their records."""
        top, scanned = (f"({before}" if before is not None else "+inf"), limit * 4 + 8
        page: list[tuple[str, float]] = self.r.zrevrangebyscore(
            f"{PREFIX}jobs", top, "-inf", start=0, num=scanned, withscores=True
        )
        records = self._get_many([job_id for job_id, _ in page])
        if gone := [job_id for (job_id, _), job in zip(page, records, strict=True) if job is None]:
            self.r.zrem(f"{PREFIX}jobs", *gone)  # expired records leave the index as they are met
        jobs: list[Job] = []
        for (_, score), job in zip(page, records, strict=True):
            if job is None or (owner is not None and job.owner != owner):
                continue
            jobs.append(job)
            if len(jobs) == limit:
                return jobs, score
        # A full window of other owners' jobs: the next page goes on from where this scan stopped.
        return jobs, (page[-1][1] if len(page) == scanned else None)

    def move(self, job_id: str, item: Item, expected: tuple[str, ...]) -> bool:
        """Store ``item`` if its stored status is one of ``expected``; the compare-and-set of every transition."""
        keys = [self._key(job_id, ":items"), self._key(job_id, ":ended"), self._key(job_id)]
        args = [str(item.index), ",".join(expected), json.dumps(asdict(item)), item.status, now_iso()]
        return bool(self._transition(keys=keys, args=args))

    def request_cancel(self, job_id: str) -> None:
        self.update(job_id, {"cancel_requested": "1", "updated_at": now_iso()})

    def update(
        self, job_id: str, fields: dict[str, str], schedule: str | None = None, due: float | None = None
    ) -> bool:
        """Write ``fields`` to the job's record only if it still exists (False, nothing written, if it
        expired). With ``schedule``, the job is put there due at ``due`` in the same step, or taken off
        it when ``due`` is None or the record is gone."""
        pairs = [part for name, value in fields.items() for part in (name, value)]
        keys = [self._key(job_id)] + ([schedule] if schedule else [])
        return bool(self._update(keys=keys, args=[job_id, "" if due is None else repr(due), *pairs]))

    def all_ended(self, job_id: str, total: int) -> bool:
        return int(self.r.scard(self._key(job_id, ":ended"))) >= total

    def finalize(self, job_id: str, status: JobStatus) -> bool:
        """Record the final status once; True only for the caller that recorded it, which also starts
        the record's retention (its keys expire; a webhook delivery's later writes keep the expiry)."""
        recorded = bool(self.r.hsetnx(self._key(job_id), "final_status", status))
        if recorded and self.retention_s is not None:
            pipe = self.r.pipeline(transaction=False)
            for suffix in ("", ":items", ":ended"):
                pipe.expire(self._key(job_id, suffix), self.retention_s)
            pipe.execute()
        return recorded


def _job(raw: dict[str, str], items: dict[str, str]) -> Job | None:
    """A job from its two Redis hashes (``None`` when the record is gone)."""
    if not raw:
        return None
    webhook = json.loads(raw["webhook"]) if raw.get("webhook") else None
    return Job(
        job_id=raw["job_id"],
        total=int(raw["total"]),
        created_at=raw["created_at"],
        updated_at=raw["updated_at"],
        model=raw.get("model") or None,
        format=raw.get("format") or None,
        webhook_url=raw.get("webhook_url") or None,
        owner=raw.get("owner", ""),
        cancel_requested=raw.get("cancel_requested") == "1",
        final_status=JobStatus(raw["final_status"]) if raw.get("final_status") else None,
        webhook=webhook,
        items=sorted((Item(**json.loads(v)) for v in items.values()), key=lambda i: i.index),
    )
