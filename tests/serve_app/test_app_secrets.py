"""API keys never reach a deployment in plain text: the builder hands the ingress salted hashes and
every deployment settings without the keys."""

from __future__ import annotations

import pickle
from typing import Any

from ray.serve import Application

from serve_app.app import AppArgs, build_app

K1, K2 = "k1-secret-0123456789", "k2-secret-0123456789"


def init_args(app: Application) -> list[Any]:
    """Every deployment's init arguments, nested applications included."""
    found: list[Any] = []
    for arg in app._bound_deployment.init_args:
        found.extend(init_args(arg) if isinstance(arg, Application) else [arg])
    return found


def test_no_deployment_gets_a_key_in_plain_text() -> None:
    app = build_app(AppArgs(settings={"api_key": K1, "api_keys": f"{K1},{K2}"}))
    args = init_args(app)
    for arg in args:
        blob = pickle.dumps(arg)
        assert K1.encode() not in blob and K2.encode() not in blob
    (ring,) = [a for a in args if type(a).__name__ == "KeyRing"]
    assert ring.key_id(K1) and ring.key_id(K2) and ring.key_id("k3-secret-0123456789") is None
