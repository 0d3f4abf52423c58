"""The HTTP contract in-process: the ingress's real routes and error table over fake handles."""

from __future__ import annotations

from collections.abc import Iterator
from unittest.mock import ANY

import pytest
from fastapi.testclient import TestClient

from bench import images
from configs.settings import load_settings
from deployments.flow.flow import Flow
from deployments.ingress.api import create_api
from deployments.ingress.api_keys import KeyRing
from deployments.ingress.jobs_api import jobs_router
from tests.fakes import FakeJobs, FakeStorage, FakeUpscaler

KEY = "in-process-key-0123456789"


@pytest.fixture
def jobs() -> FakeJobs:
    return FakeJobs()


@pytest.fixture
def storage() -> FakeStorage:
    return FakeStorage()


@pytest.fixture
def client(jobs: FakeJobs, storage: FakeStorage) -> Iterator[TestClient]:
    settings = load_settings(max_job_images=3, max_upload_bytes=200_000, webhook_secret="s" * 20,
                             webhook_allowed_hosts="127.0.0.1")  # fmt: skip
    flow = Flow(FakeUpscaler(), storage, settings)
    with TestClient(create_api(flow, settings, [jobs_router(flow, jobs, settings)])) as c:
        yield c


def test_a_small_upload_is_upscaled_and_answers_the_seed_schema(client: TestClient) -> None:
    response = client.post("/api/images/upload", files={"image": ("p.png", images.png(40, 30), "image/png")})
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert {"original_key", "status", "folder", "s3_url", "quality_score", "upscale_scale", "processed_at"} <= set(
        result
    )
    assert (result["folder"], result["status"], result["upscale_scale"], result["original_key"]) == (
        "upscaled", "success", 2, "p.png")  # fmt: skip
    assert (result["output_width"], result["output_height"]) == (80, 60)


def test_a_body_over_the_limit_is_refused_with_the_request_id(client: TestClient) -> None:
    response = client.post("/api/images/upload", content=b"x" * 300_000, headers={"content-type": "image/png"})
    body = response.json()
    assert response.status_code == 413 and body["error"] == "upload_too_large" and body["request_id"]


def test_a_job_is_accepted_with_202_and_its_location(client: TestClient, jobs: FakeJobs) -> None:
    files = [
        ("images", ("a.png", images.png(16, 16), "image/png")),
        ("images", ("b.jpg", images.jpeg(20, 10), "image/jpeg")),
    ]
    response = client.post("/api/jobs", files=files, data={"format": "webp"})
    assert response.status_code == 202, response.text
    assert response.headers["location"] == "/api/jobs/job00000"
    assert response.json() == {"success": True, "job_id": "job00000", "status": "queued", "total": 2}
    (job,) = jobs.submitted
    assert [f.filename for f in job.files] == ["a.png", "b.jpg"] and job.format == "webp"
    assert client.get("/api/jobs/job00000").json()["total"] == 2
    jobs.jobs["job00000"]["items"][0]["result"] = client.post(
        "/api/images/upload", files={"image": ("a.png", images.png(16, 16), "image/png")}
    ).json()["result"]
    shown = client.get("/api/jobs/job00000").json()["items"][0]["result"]
    assert shown["download_url"] == f"/api/objects/{shown['key']}"  # local storage: the service's route


@pytest.mark.parametrize(
    ("form", "status", "code"),
    [
        ({"format": "gif"}, 422, "unknown_format"),
        ({"model": "nope"}, 422, "unknown_model"),
        ({"webhook_url": "http://10.0.0.1/h"}, 422, "invalid_webhook_url"),
    ],
)
def test_job_options_are_checked_before_anything_is_queued(
    client: TestClient, jobs: FakeJobs, form: dict[str, str], status: int, code: str
) -> None:
    response = client.post("/api/jobs", files=[("images", ("a.png", images.png(8, 8), "image/png"))], data=form)
    assert (response.status_code, response.json()["error"]) == (status, code) and jobs.submitted == []


def test_every_bad_file_of_a_job_is_listed(client: TestClient, jobs: FakeJobs) -> None:
    files = [("images", ("ok.png", images.png(8, 8), "image/png")), ("images", ("empty.png", b"", "image/png")),
             ("images", ("x.gif", b"GIF89a" + b"\0" * 20, "image/gif"))]  # fmt: skip
    body = client.post("/api/jobs", files=files).json()
    assert body["error"] == "empty_file" and [(f["index"], f["error"]) for f in body["files"]] == [
        (1, "empty_file"), (2, "unsupported_format")]  # fmt: skip
    assert jobs.submitted == []


def test_too_many_images(client: TestClient) -> None:
    files = [("images", (f"{i}.png", images.png(8, 8), "image/png")) for i in range(4)]
    assert client.post("/api/jobs", files=files).json()["error"] == "too_many_images"


def test_an_unreachable_broker_is_a_503(jobs: FakeJobs, client: TestClient) -> None:
    jobs.up = False
    response = client.post("/api/jobs", files=[("images", ("a.png", images.png(8, 8), "image/png"))])
    assert response.status_code == 503 and response.json()["error"] == "jobs_unavailable"


def test_a_bad_query_parameter_is_named(client: TestClient) -> None:
    response = client.get("/api/jobs", params={"limit": 0})
    assert response.status_code == 422 and response.json()["error"] == "invalid_parameter"
    assert "limit" in response.json()["message"]


def test_openapi_lists_the_error_codes_per_status(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    responses = paths["/api/jobs"]["post"]["responses"]
    assert {"202", "413", "415", "422", "503"} <= set(responses)
    assert "too_many_images" in responses["413"]["description"]
    for submit in (responses, paths["/api/images/upload"]["post"]["responses"]):
        assert "404" not in submit and "unknown_model" in submit["422"]["description"]
    assert "job_not_found" in paths["/api/jobs/{job_id}"]["get"]["responses"]["404"]["description"]


@pytest.mark.parametrize(
    ("path", "files", "field"),
    [("/api/images/upload", {"picture": ("a.png", b"x", "image/png")}, "image"), ("/api/jobs", None, "images")],
)
def test_a_missing_file_field_is_a_422_naming_it_as_the_schema_requires_it(
    client: TestClient, path: str, files: dict[str, tuple[str, bytes, str]] | None, field: str
) -> None:
    response = client.post(path, files=files, data={"model": "vcsr-m-x2"})
    assert (response.status_code, response.json()["error"]) == (422, "missing_field")
    assert f"field named {field!r}" in response.json()["message"]
    schema = client.get("/openapi.json").json()["paths"][path]["post"]["requestBody"]["content"]
    body = schema["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert client.get("/openapi.json").json()["components"]["schemas"][body]["required"] == [field]


def test_a_key_sees_only_the_jobs_it_created(jobs: FakeJobs, storage: FakeStorage) -> None:
    settings = load_settings(api_keys="first-key-0123456789,second-key-0123456789")
    flow = Flow(FakeUpscaler(), storage, settings)
    keys = KeyRing.from_keys(settings.api_key_list)
    with TestClient(create_api(flow, settings, [jobs_router(flow, jobs, settings)], keys=keys)) as client:
        first, second = {"X-API-Key": "first-key-0123456789"}, {"X-API-Key": "second-key-0123456789"}
        files = [("images", ("a.png", images.png(8, 8), "image/png"))]
        assert client.post("/api/jobs", files=files).status_code == 401
        job_id = client.post("/api/jobs", files=files, headers=first).json()["job_id"]
        assert client.get(f"/api/jobs/{job_id}", headers=first).status_code == 200
        assert client.get(f"/api/jobs/{job_id}", headers=second).status_code == 404
        assert client.delete(f"/api/jobs/{job_id}", headers=second).status_code == 404
        assert client.get("/api/jobs", headers=second).json()["jobs"] == []
        assert [j["job_id"] for j in client.get("/api/jobs", headers=first).json()["jobs"]] == [job_id]
    (job,) = jobs.submitted
    assert job.owner and "first-key" not in job.owner  # an id, never the key


def test_an_unknown_route_and_a_wrong_method_are_named_after_their_status(client: TestClient) -> None:
    missing, wrong = client.get("/api/nothing-here"), client.put("/api/images/upload")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found") and missing.json()["request_id"]
    assert (wrong.status_code, wrong.json()["error"]) == (405, "method_not_allowed")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/images/upload", "POST"),
        ("PATCH", "/api/jobs", "GET, POST"),  # two routes on one path: both named (RFC 9110 §10.2.1)
        ("POST", "/api/jobs/job1", "DELETE, GET"),
        ("DELETE", "/api/health", "GET"),
    ],
)
def test_a_405_names_every_method_the_path_takes_in_allow(
    client: TestClient, method: str, path: str, allow: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == 405 and response.headers["allow"] == allow


def test_an_unexpected_exception_is_an_internal_error_and_says_nothing_stored(storage: FakeStorage) -> None:
    settings = load_settings()
    flow = Flow(FakeUpscaler(), storage, settings)

    async def broken() -> None:
        raise KeyError("no such thing")

    flow.models = broken  # type: ignore[method-assign, assignment]
    with TestClient(create_api(flow, settings), raise_server_exceptions=False) as c:
        response = c.get("/api/models")
    assert response.status_code == 500 and response.json()["error"] == "internal_error"
    assert response.json()["message"] == "Internal error (KeyError); nothing was stored."


def test_openapi_declares_the_api_key_scheme_on_every_route_that_needs_a_key(storage: FakeStorage) -> None:
    settings = load_settings()
    flow = Flow(FakeUpscaler(), storage, settings)
    keys = KeyRing.from_keys([KEY])
    spec = create_api(flow, settings, [jobs_router(flow, FakeJobs(), settings)], keys=keys).openapi()
    assert spec["components"]["securitySchemes"] == {
        "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": ANY}}  # fmt: skip
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            open_path = path in ("/api/health", "/api/formats")  # open_paths.py: no key asked
            assert (operation.get("security") == [{"ApiKey": []}]) == (not open_path), (method, path)
    open_api = create_api(flow, settings).openapi()  # no keys configured: nothing to declare
    assert "securitySchemes" not in open_api.get("components", {})


def test_a_refused_key_keeps_the_services_own_401_body(storage: FakeStorage) -> None:
    settings = load_settings()
    app = create_api(Flow(FakeUpscaler(), storage, settings), settings, keys=KeyRing.from_keys([KEY]))
    with TestClient(app) as c:
        response = c.get("/api/models", headers={"X-API-Key": "wrong-key-0123456789"})
    assert response.status_code == 401 and response.json()["error"] == "unauthorized"
