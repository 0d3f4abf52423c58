"""Ray's ``serve`` command as the launcher runs it, with a shutdown that lets accepted uploads finish.

``python -m serve_app.serve_cli GRACE_S run CONFIG …`` is ``serve run CONFIG …`` except for its graceful
path (SIGINT, which the launcher sends on SIGTERM). Ray's ``serve.shutdown()`` deletes every deployment
at once: a Storage or Upscaler replica with nothing in flight stops within seconds, under an Ingress
replica still holding uploads that will call it, and it waits for Serve at most 30 s before ``serve
run`` exits and tears the local Ray down. Here it first waits, up to ``GRACE_S``, until no Ingress
replica holds a request, then shuts Serve down allowing it ``GRACE_S`` too.

A local Ray it starts (``--address local``) serves its dashboard on ``DASHBOARD_HOST``: ``serve run``
calls ``ray.init`` without ``dashboard_host``, so Ray binds 127.0.0.1, which a container's published
port never reaches, and Ray reads no variable for it.
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Callable, Sequence

from configs.settings import load_settings

log = logging.getLogger("ray.serve")

INGRESS = "Ingress"
POLL_S = 0.5


def ingress_requests() -> int:
    """Requests the Ingress replicas of every application hold now (Serve's own count, asked of each
    replica: named actors ``SERVE_REPLICA::<app>#Ingress#<id>`` in the ``serve`` namespace)."""
    import ray

    names = [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith("SERVE_REPLICA::") and f"#{INGRESS}#" in a["name"]
    ]
    replicas = [ray.get_actor(name, namespace="serve") for name in names]
    return int(sum(ray.get([r.get_num_ongoing_requests.remote() for r in replicas], timeout=10)))


def wait_until_idle(held: Callable[[], int], grace_s: float, poll_s: float = POLL_S) -> bool:
    """Poll ``held`` until it is 0 (``True``) or ``grace_s`` has passed (``False``). A failing count
    (a replica gone meanwhile) is asked again."""
    deadline = time.monotonic() + grace_s
    while True:
        try:
            count = held()
        except Exception as exc:  # a replica that died between listing and asking
            log.warning("shutdown: counting the ingress's requests failed (%s); asking again", exc)
            count = -1
        if count == 0:
            return True
        if time.monotonic() >= deadline:
            log.warning("shutdown: the ingress still holds %d request(s) after %.0f s; stopping", count, grace_s)
            return False
        time.sleep(poll_s)


def install(grace_s: float, held: Callable[[], int] = ingress_requests, poll_s: float = POLL_S) -> None:
    """Make ``serve.shutdown()`` (which ``serve run`` calls on SIGINT) wait for the ingress first, and
    wait for Serve's controller up to ``grace_s`` instead of 30 s."""
    from ray import serve
    from ray.serve._private.client import ServeControllerClient

    ServeControllerClient.shutdown.__defaults__ = (grace_s,)
    delete_everything: Callable[[], None] = serve.shutdown

    def shutdown() -> None:
        log.warning("shutdown: waiting up to %.0f s for the uploads the ingress holds", grace_s)
        wait_until_idle(held, grace_s, poll_s)
        delete_everything()

    serve.shutdown = shutdown


def starts_a_local_ray(serve_args: Sequence[str]) -> bool:
    """Whether ``serve …`` starts a Ray of its own (``--address local``) rather than joining a cluster."""
    args = list(serve_args)
    return any(a == "--address" and args[i + 1 : i + 2] == ["local"] for i, a in enumerate(args)) or (
        "--address=local" in args
    )


def dashboard_on(host: str) -> None:
    """Make the ``ray.init`` that ``serve run`` calls start the dashboard on ``host``. Only for a Ray
    started here: Ray Client (``ray://``) refuses the argument, and a cluster keeps its own dashboard."""
    import ray

    ray.init = functools.partial(ray.init, dashboard_host=host)


def main(argv: list[str]) -> int:
    """``GRACE_S`` then ``serve``'s own arguments."""
    from ray.serve.scripts import cli

    install(float(argv[0]))
    if starts_a_local_ray(argv[1:]):
        dashboard_on(load_settings().dashboard_host)
    sys.argv = ["serve", *argv[1:]]
    cli()  # click's: exits with serve's own status
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
