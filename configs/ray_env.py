"""The environment every Ray process of the service starts with: Ray reads ``RAY_<name>`` variables as
its system config, in each process at start, so they must be set where Ray is started. The launcher
sets them when it starts a local Ray (``scripts/serve``), the container image for clusters (its
``ENV``, checked against this table by a test), and the benchmarks on the Ray head they start.

``max_direct_call_object_size``: arguments and results up to this size travel inside the call's own
RPC instead of through the shared-memory object store (Ray's default is 100 KiB). A 4K JPEG upload
(1–4 MB) then crosses proxy → ingress → storage without object-store puts, pins and frees, which
costs Ray's own processes less than half the CPU per upload and serves more uploads per second
(measured by ``python -m bench.floor``; the figures are in docs/benchmarks.md, "The Serve path's own
cost per upload"). Larger objects, such as upscaled outputs, still go through the store.
"""

from __future__ import annotations

RAY_ENV: dict[str, str] = {"RAY_max_direct_call_object_size": str(4 * 1024 * 1024)}
