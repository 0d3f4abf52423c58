"""The service's limits as the command line plans with them: from ``GET /api/limits``, or today's
defaults from a service too old to have that route (it answers 404).

A job's request is one multipart body, and the service's body limit (``max_job_bytes``) counts all of
it: each file's bytes plus its part's headers (boundary, ``Content-Disposition`` with the file name,
``Content-Type``), plus the form fields. ``PART_OVERHEAD_BYTES`` and ``FORM_OVERHEAD_BYTES`` bound
those generously, so a batch planned within ``job_bytes`` is never refused with 413 for its framing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PART_OVERHEAD_BYTES = 512  # boundary + part headers; file names are sent as given, up to ~255 bytes
FORM_OVERHEAD_BYTES = 4096  # the model and format fields and the closing boundary
# Polls may use at most this share of the rate limit: the rest stays for submits and downloads.
POLL_SHARE = 0.5


@dataclass(frozen=True)
class ServiceLimits:
    max_job_images: int
    max_job_bytes: int
    rate_windows: tuple[tuple[int, int], ...] = ()  # (requests, seconds), from RATE_LIMIT
    rate_limit: str | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ServiceLimits:
        windows = tuple((int(w["amount"]), int(w["period_s"])) for w in body.get("rate_limits") or [])
        return cls(int(body["max_job_images"]), int(body["max_job_bytes"]), windows, body.get("rate_limit"))

    @property
    def job_bytes(self) -> int:
        """File bytes plus ``PART_OVERHEAD_BYTES`` per file that one job may carry."""
        return max(1, self.max_job_bytes - FORM_OVERHEAD_BYTES)

    @property
    def poll_interval_s(self) -> float:
        """The shortest wait between two polls that keeps polling within ``POLL_SHARE`` of every window
        of the rate limit (0 without one): ``60/minute`` → 2 s, ``20/minute`` → 6 s."""
        return max((period / amount / POLL_SHARE for amount, period in self.rate_windows), default=0.0)


# What the command line assumed before the service published its limits: 16 files and 40 MB per job
# (under the default MAX_UPLOAD_BYTES of 50 MiB), no rate limit known.
DEFAULT_LIMITS = ServiceLimits(max_job_images=16, max_job_bytes=40_000_000 + FORM_OVERHEAD_BYTES)
