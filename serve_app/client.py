"""A small client for the service's HTTP API, as the command line uses it (httpx, synchronous).

Errors come back as ``ApiError`` carrying the service's own JSON (``message``, ``error`` code and, for a
refused job, the ``files`` it refused), so the command line shows people the service's words.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from configs import formats
from deployments.contracts.jobs import JobView


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any] | None, fallback: str = "") -> None:
        self.status = status
        self.body = body or {}
        super().__init__(self.body.get("message") or fallback or f"the service answered HTTP {status}")

    @property
    def code(self) -> str:
        """The service's error code (``http_<status>`` when its answer carried none)."""
        return str(self.body.get("error", f"http_{self.status}"))

    @property
    def refused_files(self) -> list[dict[str, Any]]:
        """For a refused job: ``[{"index", "filename", "error", "message"}]``, one per bad file."""
        files = self.body.get("files")
        return list(files) if isinstance(files, list) else []


def _json(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.is_error:
        raise ApiError(response.status_code, body if isinstance(body, dict) else None, response.text[:200])
    return body


class Client:
    def __init__(self, url: str, api_key: str | None = None, timeout: float = 120.0) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def health(self) -> tuple[bool, dict[str, Any]]:
        response = self.http.get("/api/health")
        return response.status_code == 200, response.json()

    def models(self) -> list[dict[str, Any]]:
        return list(_json(self.http.get("/api/models")))

    def stats(self) -> dict[str, Any]:
        return dict(_json(self.http.get("/api/stats")))

    def submit(self, paths: Sequence[Path], model: str | None = None, fmt: str | None = None) -> dict[str, Any]:
        """POST /api/jobs with every file in the repeated ``images`` field; the 202 body."""
        files = [
            ("images", (p.name, p.read_bytes(), formats.media_type_of_suffix(p.suffix) or "application/octet-stream"))
            for p in paths
        ]
        data = {k: v for k, v in {"model": model, "format": fmt}.items() if v}
        return dict(_json(self.http.post("/api/jobs", files=files, data=data)))

    def job(self, job_id: str) -> JobView | None:
        """The job, or None when the service does not know it (expired, or another service's)."""
        response = self.http.get(f"/api/jobs/{quote(job_id, safe='')}")
        if response.status_code == 404:
            return None
        view: JobView = _json(response)  # JobResponse: the jobs deployment's view, download URLs added
        return view

    def cancel(self, job_id: str) -> dict[str, Any]:
        return dict(_json(self.http.delete(f"/api/jobs/{quote(job_id, safe='')}")))

    def download(self, result: dict[str, Any]) -> bytes:
        """A result's bytes: from its presigned URL when it has one (S3; no API key is sent there), else
        from the service's object route."""
        url = result.get("download_url")
        if url and url.startswith(("http://", "https://")):
            response = httpx.get(url, timeout=self.http.timeout)
        else:
            response = self.http.get("/api/objects/" + quote(result["key"], safe="/'"))
        if response.is_error:
            _json(response)
        return response.content
