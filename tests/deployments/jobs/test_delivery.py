"""One webhook attempt against hostile receivers on 127.0.0.1 and a resolver that changes its answer:
the attempt ends at its deadline however slowly the answer comes, reads at most 64 KiB of it, and
connects to the address that was checked, still naming the host (Host header, TLS server name)."""

from __future__ import annotations

import socket
import ssl
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from deployments.jobs.delivery import MAX_ANSWER_BYTES
from deployments.jobs.records import JobStore
from deployments.jobs.webhooks import Webhooks
from tests.deployments.jobs.support import deliver_all, schedule, state
from tests.webhook_receiver import webhook_receiver

MIB = 1024 * 1024
PUBLIC = "93.184.215.14"  # a global address; no test ever connects to it (see ``network``)


Answer = list[tuple[str, int | None]]  # addresses, each with the port it gives (None: the port asked for)


class Resolver:
    """``socket.getaddrinfo`` with scripted answers for some names: each lookup takes the next answer
    (the last one repeats)."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real, self.answers, self.asked = real, dict[str, list[Answer]](), list[str]()

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in self.answers:
            return self.real(host, port, *args, **kwargs)
        self.asked.append(name)
        queue = self.answers[name]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, p or int(port or 0))) for a, p in answer]


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Resolver:
    fake = Resolver(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every address the delivery connects to; anything but loopback is refused before a packet leaves."""
    connected: list[tuple[str, int]] = []
    real = anyio.connect_tcp

    async def connect_tcp(remote_host: Any, remote_port: int, **kwargs: Any) -> Any:
        connected.append((str(remote_host), remote_port))
        if not str(remote_host).startswith("127."):
            raise OSError(f"{remote_host} is outside this test")
        return await real(remote_host, remote_port, **kwargs)

    monkeypatch.setattr(anyio, "connect_tcp", connect_tcp)
    return connected


@pytest.mark.parametrize("where", ["head", "body"])
def test_an_attempt_ends_at_its_deadline_however_slowly_the_answer_trickles(
    store: JobStore, hooks: Callable[..., Webhooks], where: str
) -> None:
    with webhook_receiver(trickle=where, trickle_s=0.5) as receiver:  # a byte every 0.5 s: 15-19 s in all
        w = hooks(max_attempts=1, timeout_s=1.0)
        schedule(store, w, "job-slow", receiver.url)
        started = time.monotonic()
        deliver_all(w)
        took = time.monotonic() - started
    assert len(receiver.calls) == 1 and took < 3.0, f"the attempt took {took:.1f} s"
    assert state(store, "job-slow")["attempts"] == 1
    assert "within 1 s (WEBHOOK_TIMEOUT_S)" in str(state(store, "job-slow")["last_error"])


def test_a_huge_answer_is_read_no_further_than_64_kib(store: JobStore, hooks: Callable[..., Webhooks]) -> None:
    with webhook_receiver(answer_bytes=150 * MIB) as receiver:
        w = hooks(max_attempts=1)
        schedule(store, w, "job-big", receiver.url)
        tracemalloc.start()
        try:
            deliver_all(w)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert state(store, "job-big")["delivered_at"]  # a 2xx is a delivery, whatever follows it
    # What the receiver got rid of before the socket closed is loopback's buffers, not what was read.
    assert receiver.sent < 32 * MIB, f"{receiver.sent / MIB:.0f} MiB sent"
    assert peak < 8 * MIB, f"{peak / MIB:.1f} MiB allocated at the peak"
    assert MAX_ANSWER_BYTES == 64 * 1024


def test_a_name_that_rebinds_to_loopback_is_still_connected_at_the_address_that_was_checked(
    store: JobStore, hooks: Callable[..., Webhooks], resolver: Resolver, network: list[tuple[str, int]]
) -> None:
    with webhook_receiver() as receiver:
        # First a public address (the check passes), then loopback where the receiver listens.
        resolver.answers["rebind.test"] = [[(PUBLIC, None)], [("127.0.0.1", receiver.port)]]
        w = hooks(max_attempts=1, hosts=frozenset(), timeout_s=1.0)
        schedule(store, w, "job-rebind", "http://rebind.test/hooks/upscaler")
        deliver_all(w)
    assert receiver.calls == []  # the POST never reached 127.0.0.1
    assert resolver.asked == ["rebind.test"] and network == [(PUBLIC, 80)]
    assert state(store, "job-rebind")["delivered_at"] is None


def test_the_pinned_address_still_gets_the_host_name(
    store: JobStore, hooks: Callable[..., Webhooks], resolver: Resolver, network: list[tuple[str, int]]
) -> None:
    with webhook_receiver() as receiver:
        resolver.answers["hooks.test"] = [[("127.0.0.1", None)]]
        url = f"http://hooks.test:{receiver.port}/hooks/upscaler?job=1"
        w = hooks(hosts=frozenset({"hooks.test"}))
        schedule(store, w, "job-host", url)
        deliver_all(w)
    assert state(store, "job-host")["delivered_at"] and network == [("127.0.0.1", receiver.port)]
    headers, _ = receiver.calls[0]
    assert headers["host"] == f"hooks.test:{receiver.port}"


def test_a_refused_connection_moves_on_to_the_next_checked_address(
    store: JobStore, hooks: Callable[..., Webhooks], resolver: Resolver, network: list[tuple[str, int]]
) -> None:
    with webhook_receiver() as receiver:  # it listens on 127.0.0.1 only: 127.0.0.9 refuses
        resolver.answers["hooks.test"] = [[("127.0.0.9", None), ("127.0.0.1", None)]]
        w = hooks(max_attempts=1, hosts=frozenset({"hooks.test"}))
        schedule(store, w, "job-next", f"http://hooks.test:{receiver.port}/hooks/upscaler")
        deliver_all(w)
    assert state(store, "job-next")["delivered_at"] and len(receiver.calls) == 1
    assert network == [("127.0.0.9", receiver.port), ("127.0.0.1", receiver.port)] and resolver.asked == ["hooks.test"]


def _self_signed(name: str, folder: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for ``name`` only (no IP address in it), and a client
    context that trusts that certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return server, ssl.create_default_context(cadata=pem.decode())


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[tuple[ssl.SSLContext, ssl.SSLContext]]:
    yield _self_signed("hooks.test", tmp_path)


def test_tls_to_the_pinned_address_names_the_host_and_checks_its_certificate(
    store: JobStore,
    hooks: Callable[..., Webhooks],
    resolver: Resolver,
    network: list[tuple[str, int]],
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server, trust = tls
    with webhook_receiver(tls=server) as receiver:
        resolver.answers["hooks.test"] = [[("127.0.0.1", None)]]
        w = hooks(hosts=frozenset({"hooks.test"}), verify=trust)
        schedule(store, w, "job-tls", f"https://hooks.test:{receiver.port}/hooks/upscaler")
        deliver_all(w)
    # The certificate names hooks.test only: verified against the name, not the address connected to.
    assert state(store, "job-tls")["delivered_at"], state(store, "job-tls")
    assert receiver.server_names == ["hooks.test"] and network == [("127.0.0.1", receiver.port)]
