"""``python -m serve_app upload PATH…``: files and folders in, jobs submitted, results downloaded.

Files go in batches (one job each) within the limits the service publishes (``GET /api/limits``: images
and bytes per job); the jobs run on the service while this polls them, showing a bar per file in flight
and one for the total with an ETA (rich). Polls back off (``PollDelay``) and never come faster than the
service's rate limit allows for them, and only the oldest unfinished job is polled: the service works
through jobs in order, so a later one is asked about once the earlier ones have ended.

With ``--out DIR`` each result is written to ``DIR/<folder>/<name>`` (the service's three folders) and
a manifest in DIR remembers finished files and submitted jobs, so re-running the same command after a
stop resumes: finished files are skipped, jobs still known to the service are polled
again instead of being resubmitted, and anything resubmitted lands on the same keys (the service's
keys are content addresses, so nothing is stored twice). Exit status: 0 when every file succeeded,
1 when any failed (refused, couldn't_upscale, cancelled), 2 when the service could not be used.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from configs import formats
from deployments.contracts.jobs import ItemView, JobView
from serve_app.client import ApiError, Client
from serve_app.service_limits import PART_OVERHEAD_BYTES

MANIFEST = ".visioncloud-upload.json"
POLL_FIRST_S = 0.5  # the first wait after progress; doubled while nothing changes, up to POLL_MAX_S
POLL_MAX_S = 10.0
SPLIT_CODES = {"upload_too_large", "too_many_images"}  # a batch over a limit the service did not publish
ENDED = {"success", "error", "cancelled"}
JOB_ENDED = {"completed", "failed", "cancelled"}


@dataclass
class Entry:
    """One local file and what became of it."""

    path: Path
    digest: str
    size: int
    status: str = "waiting"  # waiting, queued, running, success, error, cancelled, refused, skipped
    folder: str | None = None
    key: str | None = None
    output: Path | None = None
    message: str | None = None
    result: dict[str, Any] | None = None

    @property
    def failed(self) -> bool:
        return self.status in ("error", "cancelled", "refused")

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "status": self.status,
            "folder": self.folder,
            "key": self.key,
            "output": str(self.output) if self.output else None,
            "message": self.message,
        }


def collect(paths: list[Path], recursive: bool) -> tuple[list[Path], list[str]]:
    """Files named on the command line as they are; images inside folders (with ``recursive``, in
    subfolders too). Returns the files (sorted, each once) and a problem per path that is neither."""
    found: dict[Path, None] = {}
    problems: list[str] = []
    suffixes = formats.upload_suffixes()
    for path in paths:
        if path.is_file():
            found[path.resolve()] = None
        elif path.is_dir():
            pattern = path.rglob("*") if recursive else path.glob("*")
            for child in sorted(pattern):
                if child.is_file() and child.suffix.lower() in suffixes and not child.name.startswith("."):
                    found[child.resolve()] = None
        else:
            problems.append(f"{path}: no such file or folder")
    return sorted(found), problems


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def batches(entries: list[Entry], max_files: int, max_bytes: int) -> Iterator[list[Entry]]:
    """Consecutive groups of at most ``max_files`` whose bytes, each file counted with its part's
    framing (``PART_OVERHEAD_BYTES``), stay within ``max_bytes`` (a file over it goes alone: the
    service says why)."""
    group: list[Entry] = []
    size = 0
    for entry in entries:
        cost = entry.size + PART_OVERHEAD_BYTES
        if group and (len(group) >= max_files or size + cost > max_bytes):
            yield group
            group, size = [], 0
        group.append(entry)
        size += cost
    if group:
        yield group


@dataclass
class Manifest:
    """What a previous run in the same --out folder finished and submitted (JSON, written atomically)."""

    path: Path | None
    done: dict[str, dict[str, Any]] = field(default_factory=dict)  # digest:model:format → {folder, key, output}
    jobs: dict[str, list[str]] = field(default_factory=dict)  # job id → digests, in item order

    @classmethod
    def load(cls, out: Path | None) -> Manifest:
        if out is None:
            return cls(None)
        path = out / MANIFEST
        if not path.exists():
            return cls(path)
        data = json.loads(path.read_text())
        return cls(path, dict(data.get("done", {})), dict(data.get("jobs", {})))

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": 1, "done": self.done, "jobs": self.jobs}, indent=1))
        tmp.replace(self.path)


def write_output(out: Path, key: str, data: bytes) -> Path:
    """``out/<folder>/<name>`` from the key (already sanitised by the service), written atomically."""
    folder, name = key.split("/", 1)
    target = out / folder / Path(name).name
    if target.exists() and target.stat().st_size == len(data):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(target)
    return target


@dataclass
class Options:
    out: Path | None
    model: str | None
    fmt: str | None
    max_files: int
    max_bytes: int
    poll_interval_s: float = 0.0  # the least wait between polls (from the rate limit)


class PollDelay:
    """The wait before the next poll: ``POLL_FIRST_S`` after progress, doubled while nothing changes, at
    most ``POLL_MAX_S``, and never under ``floor_s`` (the rate limit's share for polls)."""

    def __init__(self, floor_s: float = 0.0) -> None:
        self.floor_s = floor_s
        self.current = POLL_FIRST_S

    def next(self, progressed: bool) -> float:
        self.current = POLL_FIRST_S if progressed else min(self.current * 2, POLL_MAX_S)
        return max(self.current, self.floor_s)


class Run:
    """One invocation: submits, polls, downloads, and tells a ``view`` (progress bars or nothing)."""

    def __init__(
        self,
        client: Client,
        entries: list[Entry],
        options: Options,
        view: Any,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.sleep = sleep
        self.entries = entries
        self.options = options
        self.view = view
        self.manifest = Manifest.load(options.out)
        self.active: dict[str, list[Entry]] = {}  # job id → its entries in item order

    def done_key(self, entry: Entry) -> str:
        """A file is done for the options it was run with: another model or format is new work."""
        return f"{entry.digest}:{self.options.model or ''}:{self.options.fmt or ''}"

    def skip_finished(self) -> None:
        for entry in self.entries:
            record = self.manifest.done.get(self.done_key(entry))
            if record and record.get("output") and Path(record["output"]).exists():
                entry.status, entry.folder, entry.key = "skipped", record["folder"], record["key"]
                entry.output = Path(record["output"])
                self.view.finished(entry)

    def resume_jobs(self) -> None:
        """Jobs a stopped run submitted for files still unfinished: poll them again, if the service knows them."""
        by_digest = {e.digest: e for e in self.entries if e.status == "waiting"}
        for job_id, digests in list(self.manifest.jobs.items()):
            members = [by_digest.get(d) for d in digests]
            if not any(members) or self.client.job(job_id) is None:
                del self.manifest.jobs[job_id]
                continue
            self.active[job_id] = [
                m or Entry(Path("(not in this run)"), d, 0) for m, d in zip(members, digests, strict=True)
            ]
            for member in members:
                if member:
                    member.status = "queued"
                    self.view.started(member)

    def submit_all(self) -> None:
        waiting = [e for e in self.entries if e.status == "waiting"]
        for group in batches(waiting, self.options.max_files, self.options.max_bytes):
            self.submit(group)

    def submit(self, group: list[Entry]) -> None:
        while group:
            try:
                answer = self.client.submit([e.path for e in group], self.options.model, self.options.fmt)
            except ApiError as exc:
                refused = {f["index"]: f for f in exc.refused_files}
                if not refused and exc.code in SPLIT_CODES and len(group) > 1:
                    half = len(group) // 2  # over a limit we did not know of: halve until it fits
                    self.submit(group[:half])
                    self.submit(group[half:])
                    return
                if not refused:
                    if 400 <= exc.status < 500 and exc.status != 401:
                        for entry in group:
                            self.fail(entry, "refused", str(exc))
                        return
                    raise
                for index, info in refused.items():
                    self.fail(group[index], "refused", str(info.get("message", exc)))
                group = [e for i, e in enumerate(group) if i not in refused]
                continue
            self.active[answer["job_id"]] = group
            self.manifest.jobs[answer["job_id"]] = [e.digest for e in group]
            self.manifest.save()
            for entry in group:
                entry.status = "queued"
                self.view.started(entry)
            return

    def fail(self, entry: Entry, status: str, message: str) -> None:
        entry.status, entry.message = status, message
        self.view.finished(entry)

    def poll(self) -> None:
        """Poll the oldest unfinished job until every job has ended, one request per wait."""
        delay = PollDelay(self.options.poll_interval_s)
        while self.active:
            job_id = next(iter(self.active))
            job = self.client.job(job_id)
            if job is None:
                for entry in self.active.pop(job_id):
                    if entry.status not in ENDED:
                        self.fail(entry, "error", f"job {job_id} is no longer known to the service")
                progressed = True
            else:
                progressed = self.apply(job_id, job)
            if self.active:
                self.sleep(delay.next(progressed))

    def apply(self, job_id: str, job: JobView) -> bool:
        """Takes in the job's news; whether any file moved on (or the job ended)."""
        members = self.active[job_id]
        progressed = False
        for item in job["items"]:
            entry = members[item["index"]]
            if entry.status in ENDED or entry.status == "skipped" or not entry.size:
                continue
            if item["status"] not in ENDED:
                status = "running" if item["status"] == "running" else "queued"
                if status != entry.status:
                    entry.status, progressed = status, True
                    self.view.update(entry)
                continue
            self.finish(entry, item)
            progressed = True
        if job["status"] in JOB_ENDED or all(e.status in ENDED or not e.size for e in members):
            del self.active[job_id]
            self.manifest.jobs.pop(job_id, None)
            self.manifest.save()
            progressed = True
        return progressed

    def finish(self, entry: Entry, item: ItemView) -> None:
        result = item["result"]
        entry.result = result
        if result:
            entry.folder, entry.key = str(result["folder"]), str(result["key"])
        if result and self.options.out is not None:  # couldn't_upscale/ keeps the original: mirrored too
            entry.output = write_output(self.options.out, str(result["key"]), self.client.download(result))
        if item["status"] == "success" and entry.output is not None:  # failures are retried by a re-run
            record = {"folder": entry.folder, "key": entry.key, "output": str(entry.output)}
            self.manifest.done[self.done_key(entry)] = record
        if item["status"] == "success":
            entry.status = "success"
        elif item["status"] == "cancelled":
            entry.status, entry.message = "cancelled", "cancelled"
        else:
            error = item["error"]
            entry.status = "error"
            entry.message = (
                error and error["message"]
            ) or "upscaling failed; the original was kept in couldn't_upscale/"
        self.view.finished(entry)
