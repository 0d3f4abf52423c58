"""The ``Allow`` header of a 405: every method the target resource takes (RFC 9110 §15.5.6).

Starlette's router hands a wrong method to the first route whose path matches, and that route's 405
lists only its own methods; ``/api/jobs`` is two routes (POST and GET), so the client would be told
that only one of them exists. The answer here asks the app's routes, method by method, which ones
they would take on this path: included routers (FastAPI nests them) and mounts answer for themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import Scope

METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The methods some route fully matches on ``scope``'s path, sorted, as an ``Allow`` value."""
    allowed = [m for m in METHODS if any(r.matches({**scope, "method": m})[0] is Match.FULL for r in routes)]
    return ", ".join(allowed)
