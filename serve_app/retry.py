"""When the command line asks again: a 429 (a rate limit, or too many uploads from this address) or a 503
(the service busy, or the jobs broker away) is a "not now", not a failure. Tenacity retries the request,
waiting what the answer's ``Retry-After`` says (a little jitter added, so clients refused together do
not return together), or, without one, on tenacity's exponential backoff with jitter. It gives up, and
the refusal stands, rather than wait past ``max_wait_s`` in all.

Both refusals come before the service does any of the work (the access layer, the upload slots and
Serve's back-pressure answer before reading the body; a job is only created once its inputs are
stored), so sending the same request again does nothing twice.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_before_delay, wait_exponential_jitter
from tenacity.wait import wait_base

RETRIED_STATUSES = frozenset({429, 503})
RETRY_AFTER_JITTER_S = 0.5
MAX_WAIT_S = 600.0


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds: delay-seconds or an HTTP-date (RFC 9110 §10.2.3); None when absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class wait_retry_after(wait_base):  # named as tenacity names its waits
    """The error's ``retry_after`` (the answer's ``Retry-After``) plus up to ``jitter_s``; ``fallback``
    when it gave none."""

    def __init__(self, fallback: wait_base, jitter_s: float = RETRY_AFTER_JITTER_S) -> None:
        self.fallback = fallback
        self.jitter_s = jitter_s

    def __call__(self, retry_state: RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        asked = getattr(error, "retry_after", None)
        if asked is None:
            return float(self.fallback(retry_state))
        return float(asked) + random.uniform(0, self.jitter_s)


def retrying(
    worth_retrying: Callable[[BaseException], bool],
    sleep: Callable[[float], None] = time.sleep,
    max_wait_s: float = MAX_WAIT_S,
    before_sleep: Callable[[float, BaseException | None], None] | None = None,
) -> Retrying:
    """The policy for one request: retry while ``worth_retrying`` the error (it carries ``retry_after``:
    seconds or None), within ``max_wait_s``.
    ``before_sleep(seconds, error)`` hears of each wait (the progress view shows it)."""

    def tell(state: RetryCallState) -> None:
        if before_sleep is not None and state.next_action is not None:
            before_sleep(state.next_action.sleep, state.outcome.exception() if state.outcome else None)

    return Retrying(
        sleep=sleep,
        retry=retry_if_exception(worth_retrying),
        wait=wait_retry_after(wait_exponential_jitter(initial=1, max=30, jitter=1)),
        stop=stop_before_delay(max_wait_s),
        before_sleep=tell,
        reraise=True,
    )
