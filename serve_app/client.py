"""A small client for the service's HTTP API, as the command line uses it (httpx, synchronous).

Errors come back as ``ApiError`` carrying the service's own JSON (``message``, ``error`` code and, for a
refused job, the ``files`` it refused), so the command line shows people the service's words. An answer
that is not the API's JSON (an HTML 502 from a proxy, a wrong ``--url``) is an ``ApiError`` too, whose
message says so, never a traceback. A 429 or 503 is asked again after its ``Retry-After`` (``retry.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from configs import formats
from deployments.contracts.jobs import JobView
from serve_app.retry import MAX_WAIT_S, RETRIED_STATUSES, retry_after_s, retrying
from serve_app.service_limits import DEFAULT_LIMITS, ServiceLimits


class ApiError(Exception):
    def __init__(
        self, status: int, body: dict[str, Any] | None, fallback: str = "", retry_after: float | None = None
    ) -> None:
        self.status = status
        self.body = body or {}
        self.retry_after = retry_after  # seconds the answer's Retry-After asked for
        super().__init__(self.body.get("message") or fallback or f"the service answered HTTP {status}")

    @classmethod
    def of(cls, response: httpx.Response, body: Any = None) -> ApiError:
        fallback = "" if isinstance(body, dict) else _not_json(response)
        wait = retry_after_s(response.headers.get("retry-after"))
        return cls(response.status_code, body if isinstance(body, dict) else None, fallback, wait)

    @property
    def code(self) -> str:
        """The service's error code (``http_<status>`` when its answer carried none)."""
        return str(self.body.get("error", f"http_{self.status}"))

    @property
    def refused_files(self) -> list[dict[str, Any]]:
        """For a refused job: ``[{"index", "filename", "error", "message"}]``, one per bad file."""
        files = self.body.get("files")
        return list(files) if isinstance(files, list) else []


def _not_json(response: httpx.Response) -> str:
    """What to tell a person about an answer that is not the API's JSON: its status, its type, its start."""
    kind = response.headers.get("content-type", "").split(";")[0] or "no content type"
    text = " ".join(response.text[:120].split())
    shown = f": {text}" if text else ""
    return (
        f"the service answered HTTP {response.status_code} with {kind}, not the API's JSON (a proxy in front "
        f"of it failing, or a --url that is not the service?){shown}"
    )


def _json(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        raise ApiError.of(response) from None
    if response.is_error:
        raise ApiError.of(response, body)
    return body


def _worth_retrying(error: BaseException) -> bool:
    return isinstance(error, ApiError) and error.status in RETRIED_STATUSES


class Client:
    """``sleep`` and ``transport`` are for tests (no waiting, a scripted service); ``on_wait(seconds,
    error)`` hears of every wait before a retry (the progress view sets it)."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        timeout: float = 120.0,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_wait_s: float = MAX_WAIT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout, transport=transport)
        self.on_wait: Callable[[float, BaseException | None], None] = lambda seconds, error: None
        self.retrying = retrying(_worth_retrying, sleep, max_wait_s, lambda s, e: self.on_wait(s, e))

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request, asked again after a 429 or 503 (see ``retry.py``); the last answer otherwise."""

        def once() -> httpx.Response:
            response = self.http.request(method, path, **kwargs)
            if response.status_code in RETRIED_STATUSES:
                raise ApiError.of(response, _body(response))
            return response

        return self.retrying(once)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Asked once: a 503 here is the verdict (with its reasons), not a "try later"."""
        response = self.http.get("/api/health")
        body = _body(response)
        if not isinstance(body, dict) or response.status_code not in (200, 503):
            raise ApiError.of(response, body)
        return response.status_code == 200, body

    def limits(self) -> ServiceLimits:
        """The service's limits; the defaults the command line used before, from a service without the route."""
        response = self.request("GET", "/api/limits")
        if response.status_code == 404:
            return DEFAULT_LIMITS
        return ServiceLimits.from_json(dict(_json(response)))

    def models(self) -> list[dict[str, Any]]:
        return list(_json(self.request("GET", "/api/models")))

    def stats(self) -> dict[str, Any]:
        return dict(_json(self.request("GET", "/api/stats")))

    def submit(self, paths: Sequence[Path], model: str | None = None, fmt: str | None = None) -> dict[str, Any]:
        """POST /api/jobs with every file in the repeated ``images`` field; the 202 body."""
        files = [
            ("images", (p.name, p.read_bytes(), formats.media_type_of_suffix(p.suffix) or "application/octet-stream"))
            for p in paths
        ]
        data = {k: v for k, v in {"model": model, "format": fmt}.items() if v}
        return dict(_json(self.request("POST", "/api/jobs", files=files, data=data)))

    def job(self, job_id: str) -> JobView | None:
        """The job, or None when the service does not know it (expired, or another service's)."""
        response = self.request("GET", f"/api/jobs/{quote(job_id, safe='')}")
        if response.status_code == 404:
            return None
        view: JobView = _json(response)  # JobResponse: the jobs deployment's view, download URLs added
        return view

    def cancel(self, job_id: str) -> dict[str, Any]:
        return dict(_json(self.request("DELETE", f"/api/jobs/{quote(job_id, safe='')}")))

    def download(self, result: dict[str, Any]) -> bytes:
        """A result's bytes: from its presigned URL when it has one (S3; no API key is sent there), else
        from the service's object route."""
        url = result.get("download_url")
        if url and url.startswith(("http://", "https://")):
            response = httpx.get(url, timeout=self.http.timeout)
        else:
            response = self.request("GET", "/api/objects/" + quote(result["key"], safe="/'"))
        if response.is_error:
            _json(response)
        return response.content


def _body(response: httpx.Response) -> Any:
    """The answer's JSON, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None
