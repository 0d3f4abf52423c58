"""A scripted stand-in for the service on a loopback port (a real HTTP server in a thread), for the
command line's tests of what a real service rarely does on cue: 429 and 503 with ``Retry-After``, an
HTML 502 from a proxy. Each path answers its script in order (the last answer repeats); every request
is recorded as ``(method, path)``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    status: int
    body: Any = None  # JSON unless ``text`` is given
    headers: dict[str, str] = field(default_factory=dict)
    text: str | None = None

    def encoded(self) -> tuple[bytes, str]:
        if self.text is not None:
            return self.text.encode(), "text/html; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json"


@dataclass
class FakeService:
    script: dict[tuple[str, str], list[Answer]]
    requests: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""

    def answer(self, method: str, path: str) -> Answer:
        self.requests.append((method, path))
        answers = self.script.get((method, path.split("?")[0]))
        if not answers:
            return Answer(404, {"success": False, "error": "not_found", "message": "Not Found"})
        return answers.pop(0) if len(answers) > 1 else answers[0]


@contextmanager
def fake_service(script: dict[tuple[str, str], list[Answer]]) -> Iterator[FakeService]:
    service = FakeService(script)

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            answer = service.answer(self.command, self.path)
            data, kind = answer.encoded()
            self.send_response(answer.status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _reply

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    service.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()
