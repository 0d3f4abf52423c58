"""A webhook receiver on 127.0.0.1 for tests: answers a scripted list of statuses, records every call.

Hostile modes for the delivery's bounds: ``trickle`` sends a complete answer one byte every ``trickle_s`` (``"head"``:
from the status line on; ``"body"``: the headers at once, then a 30-byte body), so a client bounded
only per read waits 15-19 s; ``answer_bytes`` answers 200 with a body that large, counting what it managed to send
(``sent``). ``on_call`` runs on each request before the answer (e.g. to expire a record meanwhile).
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

CHUNK = b"\0" * (64 * 1024)
TRICKLED_BODY = 30  # bytes: 15 s at 0.5 s a byte


@dataclass
class Receiver:
    url: str
    statuses: list[int]  # answered in order; 200 once they run out
    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    trickle: Literal["head", "body"] | None = None
    trickle_s: float = 0.5
    answer_bytes: int = 0
    on_call: Callable[[], None] | None = None
    sent: int = 0  # bytes of answer body sent (answer_bytes mode)
    received_at: list[float] = field(default_factory=list)  # time.monotonic() of each call
    server_names: list[str | None] = field(default_factory=list)  # TLS SNI of each handshake

    @property
    def port(self) -> int:
        return int(self.url.split(":")[2].split("/")[0])


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            receiver.received_at.append(time.monotonic())
            receiver.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
            if receiver.on_call:
                receiver.on_call()
            with contextlib.suppress(OSError):  # the client hung up: what the delivery's bounds are for
                self._answer()

        def _answer(self) -> None:
            if receiver.trickle == "head":  # a complete answer, slowly: 38 bytes, 19 s at 0.5 s a byte
                self._trickle(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                return
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            length = TRICKLED_BODY if receiver.trickle == "body" else receiver.answer_bytes
            self.send_header("content-length", str(length))
            self.end_headers()
            self.wfile.flush()
            if receiver.trickle == "body":
                self._trickle(b"a" * length)
            while receiver.sent < receiver.answer_bytes:
                part = CHUNK[: receiver.answer_bytes - receiver.sent]
                self.wfile.write(part)
                receiver.sent += len(part)

        def _trickle(self, data: bytes) -> None:
            for byte in data:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(receiver.trickle_s)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextmanager
def webhook_receiver(
    statuses: list[int] | None = None, tls: ssl.SSLContext | None = None, **modes: object
) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 (over TLS with ``tls``, a server context); ``modes`` set Receiver fields."""
    receiver = Receiver("", list(statuses or []), **modes)  # type: ignore[arg-type]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    if tls is not None:
        tls.sni_callback = lambda sock, name, context: receiver.server_names.append(name)
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls else "http"
    receiver.url = f"{scheme}://127.0.0.1:{server.server_address[1]}/hooks/upscaler"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
