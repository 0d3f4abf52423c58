"""One webhook attempt over HTTP: to a checked address, within one deadline, reading little.

A receiver is someone else's server and may be hostile. Two bounds keep it from holding the consumer, and
one rule keeps a name from steering the POST elsewhere:
- **One deadline per attempt** (``WEBHOOK_TIMEOUT_S``), around everything: the name's resolution, the
  connection, TLS, sending, the status line, headers and body. httpx's own timeout bounds each read, so
  a receiver that sends a byte every half second would hold an attempt for as long as it likes;
  ``asyncio.timeout`` cancels the whole exchange and the connection is closed.
- **At most 64 KiB of the answer is read** (streamed raw, so a compressed answer is never inflated),
  then the response is closed: a 150 MiB answer costs 64 KiB (plus one socket read of at most 64 KiB,
  httpcore's read size). httpcore itself refuses status and header lines past 100 KiB.
- **A checked address is the one connected to** (``resolve_webhook_target`` resolves once; the next
  checked address is tried only when a connection fails): the URL is rewritten to that address, the
  ``Host`` header keeps the name (and port), and TLS is started with the name as its server name
  (httpcore's ``sni_hostname`` request extension, which it passes to ``start_tls`` as
  ``server_hostname``), so the certificate is still verified against the name. The client keeps no
  idle connections (a pooled TLS connection to an address must not serve another name) and ignores
  proxy variables (a proxy would resolve the name again).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

import httpx

from deployments.contracts.errors import InvalidWebhookError
from deployments.contracts.webhook_targets import WebhookTarget, resolve_webhook_target

MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Attempt:
    delivered: bool
    retry: bool
    error: str | None = None


def retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


def http_client(timeout_s: float, verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
    """The delivery client: no redirects, no idle connections, no proxies from the environment."""
    return httpx.AsyncClient(
        timeout=timeout_s,
        follow_redirects=False,
        limits=httpx.Limits(max_keepalive_connections=0),
        trust_env=False,
        verify=verify,
    )


def _host_header(target: WebhookTarget) -> str:
    name = f"[{target.host}]" if ":" in target.host else target.host  # an IPv6 literal keeps its brackets
    return name if target.port == (443 if target.scheme == "https" else 80) else f"{name}:{target.port}"


def pinned_request(
    client: httpx.AsyncClient, target: WebhookTarget, address: str, headers: dict[str, str], body: bytes
) -> httpx.Request:
    """A POST of ``body`` to ``address`` (one of ``target``'s checked ones) that still names the host
    (Host header, SNI)."""
    return client.build_request(
        "POST",
        httpx.URL(target.url).copy_with(host=address, port=target.port),
        content=body,
        headers={**headers, "host": _host_header(target)},
        extensions={"sni_hostname": target.host},
    )


async def _exchange(client: httpx.AsyncClient, request: httpx.Request) -> int:
    """Send, read at most ``MAX_ANSWER_BYTES`` of the answer, close; the status."""
    response = await client.send(request, stream=True)
    try:
        read = 0
        async for chunk in response.aiter_raw():
            read += len(chunk)
            if read >= MAX_ANSWER_BYTES:
                break
    finally:
        await response.aclose()
    return response.status_code


async def _first_to_connect(
    client: httpx.AsyncClient, target: WebhookTarget, headers: dict[str, str], body: bytes
) -> int:
    """The exchange with the first checked address that takes the connection (a name with an IPv6 and
    an IPv4 address still works from a host without IPv6). A connection error sent nothing, so trying
    the next address cannot deliver twice."""
    for address in target.addresses[:-1]:
        try:
            return await _exchange(client, pinned_request(client, target, address, headers, body))
        except httpx.ConnectError:
            continue
    return await _exchange(client, pinned_request(client, target, target.addresses[-1], headers, body))


async def post(
    client: httpx.AsyncClient, url: str, hosts: frozenset[str], headers: dict[str, str], body: bytes, deadline_s: float
) -> Attempt:
    """One attempt at POSTing ``body`` to ``url``, all of it within ``deadline_s``."""
    try:
        async with asyncio.timeout(deadline_s):
            # Checked again at every attempt: the name may resolve elsewhere now. Resolution runs in a
            # thread; past the deadline the attempt stops waiting for it.
            target = await asyncio.to_thread(resolve_webhook_target, url, hosts)
            status = await _first_to_connect(client, target, headers, body)
    except InvalidWebhookError as exc:
        return Attempt(False, False, exc.message)
    except TimeoutError:
        return Attempt(False, True, f"no complete answer within {deadline_s:g} s (WEBHOOK_TIMEOUT_S)")
    except httpx.HTTPError as exc:
        return Attempt(False, True, f"{type(exc).__name__}: {exc}"[:300])
    if 200 <= status < 300:
        return Attempt(True, False)
    return Attempt(False, retryable(status), f"HTTP {status}")
