"""The jobs routes: submit many images at once, poll, list, cancel. The work is the jobs deployment's;
these routes validate exactly as the upload route does, so a job is refused whole or accepted whole.
A job belongs to the API key that created it (its id, ``keys.request_key_id``): other keys see a 404."""

from __future__ import annotations

import asyncio
from http import HTTPStatus

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse

from configs import formats
from configs.settings import Settings
from deployments.contracts.errors import (
    EmptyUploadError,
    InvalidImagesError,
    InvalidWebhookError,
    JobNotFoundError,
    TooManyImagesError,
    UploadRejectedError,
)
from deployments.contracts.handles import JobsHandle
from deployments.contracts.jobs import JobView
from deployments.contracts.values import NewFile, NewJob
from deployments.contracts.webhook_targets import check_webhook_url
from deployments.flow.flow import Flow, Upload
from deployments.ingress.api_keys import request_key_id
from deployments.ingress.downloads import Downloads
from deployments.ingress.idempotency import IDEMPOTENCY_KEY, Idempotency, fingerprint, idempotency
from deployments.ingress.responder import request_id
from deployments.ingress.schemas import ERRORS, SUBMIT_ERRORS, JobAccepted, JobList, JobResponse


async def _accept_all(flow: Flow, images: list[UploadFile], model: str | None, fmt: str | None) -> list[NewFile]:
    """Every file checked as the upload route checks it; all the refusals at once, or the files."""
    await flow.check_options(model, fmt)
    accepted: list[NewFile] = []
    failures: list[tuple[int, str, UploadRejectedError]] = []
    for index, image in enumerate(images):
        name = image.filename or ""
        try:
            data = await image.read()
            if not data:
                raise EmptyUploadError()
            ok = await flow.accept(Upload(data, image.filename, request_id(), model, fmt))
            accepted.append(NewFile(image.filename, ok.original))
        except UploadRejectedError as exc:
            failures.append((index, name, exc))
    if failures:
        raise InvalidImagesError(failures)
    return accepted


async def _webhook(url: str | None, settings: Settings) -> str | None:
    if not url:
        return None
    if settings.webhook_secret is None:
        raise InvalidWebhookError(url, "the service has no WEBHOOK_SECRET to sign events with")
    return await asyncio.to_thread(check_webhook_url, url, settings.webhook_hosts)


async def _shown(job: JobView | None, job_id: str, owner: str | None, downloads: Downloads) -> JobView:
    """The job as the API shows it: 404 for none (or another key's), results with a download URL."""
    if job is None:
        raise JobNotFoundError(job_id)
    results = [item["result"] for item in job["items"] if item["result"]]
    urls = await asyncio.gather(*(downloads.url(str(r["key"]), owner) for r in results))
    for result, url in zip(results, urls, strict=True):
        result["download_url"] = url
    return job


def jobs_router(flow: Flow, jobs: JobsHandle, settings: Settings, once: Idempotency | None = None) -> APIRouter:
    """Submit first, then the routes that read or cancel a job (the OpenAPI order). ``once`` keeps the
    submit route's Idempotency-Keys (default: in this process, for the in-process app)."""
    router = APIRouter(prefix="/api/jobs", tags=["jobs"])
    _add_submit(router, flow, jobs, settings, once or idempotency(None))
    _add_reads(router, jobs, Downloads(flow.storage))
    return router


def _add_submit(router: APIRouter, flow: Flow, jobs: JobsHandle, settings: Settings, once: Idempotency) -> None:
    @router.post("", status_code=202, response_model=JobAccepted, responses=SUBMIT_ERRORS)
    async def submit(
        request: Request,
        images: list[UploadFile] = File(min_length=1, description="One or more images (repeat the field)"),
        model: str | None = Form(None, description="A model from GET /api/models for every image"),
        output_format: str | None = Form(None, alias="format", description=formats.outputs_text()),
        webhook_url: str | None = Form(None, description="POSTed a signed event when the job ends"),
        idempotency_key: str | None = IDEMPOTENCY_KEY,
    ) -> JSONResponse:
        """Accept a batch: stored durably and queued; 202 at once, with the job's URL in Location. With an
        ``Idempotency-Key``, the same key and body within a day answer the same job."""
        if len(images) > settings.max_job_images:
            raise TooManyImagesError(len(images), settings.max_job_images)

        async def run() -> JSONResponse:
            files = await _accept_all(flow, images, model or None, output_format or None)
            url = await _webhook(webhook_url, settings)
            owner = request_key_id(request) or ""
            job = await jobs.submit.remote(NewJob(files, model or None, output_format or None, url, owner))
            body = JobAccepted(job_id=job["job_id"], status=job["status"], total=job["total"])
            location = {"Location": f"/api/jobs/{body.job_id}"}
            return JSONResponse(body.model_dump(), status_code=HTTPStatus.ACCEPTED, headers=location)

        fields = {"model": model, "format": output_format, "webhook_url": webhook_url}
        return await once.answer(request, lambda: fingerprint("jobs", fields, images), run)


def _add_reads(router: APIRouter, jobs: JobsHandle, downloads: Downloads) -> None:
    @router.get("/{job_id}", response_model=JobResponse, responses=ERRORS)
    async def get_job(request: Request, job_id: str) -> JobView:
        """The job with every item's status and, once stored, its result."""
        owner = request_key_id(request)
        return await _shown(await jobs.get.remote(job_id, owner or ""), job_id, owner, downloads)

    @router.delete("/{job_id}", response_model=JobResponse, responses=ERRORS)
    async def cancel_job(request: Request, job_id: str) -> JobView:
        """Cancel the items not yet started; the job is ``cancelled`` once nothing of it runs."""
        owner = request_key_id(request)
        return await _shown(await jobs.cancel.remote(job_id, owner or ""), job_id, owner, downloads)

    @router.get("", response_model=JobList, responses=ERRORS)
    async def list_jobs(
        request: Request,
        limit: int = Query(20, ge=1, le=100),
        cursor: str | None = Query(None, description="next_cursor of the previous page"),
    ) -> JobList:
        """Jobs, newest first."""
        before = float(cursor) if cursor and cursor.replace(".", "", 1).isdigit() else None
        views, next_cursor = await jobs.list_jobs.remote(limit, before, request_key_id(request) or "")
        page = [JobResponse.model_validate(v) for v in views]
        return JobList(jobs=page, next_cursor=None if next_cursor is None else repr(next_cursor))
