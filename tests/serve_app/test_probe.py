"""The probe behind the image's HEALTHCHECK and the KubeRay readiness probes passes only when the app
answers through this node's proxy: a Serve proxy that has no routes yet answers 404, and that node must
not get traffic."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench.s3servers import free_ports
from serve_app.probe import main

ROOT = Path(__file__).resolve().parents[2]
NO_ROUTES = b"Path '/api/health' not found. Ping http://.../-/routes for available routes."


def answering(status: int, body: bytes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), answering(200, b'{"status":"healthy"}'))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url(httpd: ThreadingHTTPServer, path: str = "/api/health") -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}{path}"


def test_a_proxy_without_the_apps_routes_is_not_ready(
    server: ThreadingHTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.RequestHandlerClass = answering(404, NO_ROUTES)
    assert main([url(server)]) == 1
    assert "404 Path '/api/health' not found" in capsys.readouterr().err


def test_a_proxy_that_routes_a_healthy_app_is_ready(server: ThreadingHTTPServer) -> None:
    assert main([url(server)]) == 0


def test_an_unhealthy_app_is_not_ready(server: ThreadingHTTPServer) -> None:
    server.RequestHandlerClass = answering(503, b'{"status":"unhealthy","reasons":["storage"]}')
    assert main([url(server)]) == 1


def test_every_url_must_answer(server: ThreadingHTTPServer) -> None:
    (closed,) = free_ports(1)
    assert main([url(server), f"http://127.0.0.1:{closed}/api/local_raylet_healthz"]) == 1


def test_by_default_it_asks_the_health_route_on_the_port_the_settings_give(
    server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORT", str(server.server_address[1]))
    assert main([]) == 0
    server.RequestHandlerClass = answering(404, NO_ROUTES)
    assert main([]) == 1


def test_a_proxy_in_the_environment_is_not_used(server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    (closed,) = free_ports(1)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{closed}")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed}")
    assert main([url(server)]) == 0


def test_it_runs_as_the_images_command(server: ThreadingHTTPServer) -> None:
    result = subprocess.run([sys.executable, "-m", "serve_app.probe", url(server)], cwd=ROOT, timeout=60)
    assert result.returncode == 0
