"""When to try a failed post again: a few quick retries in-line, then a durable backoff.

The error's class decides, never its message: a :class:`~omsbridge.errors.RetryableError`
(5xx, timeout, row lock) is retried, a :class:`~omsbridge.errors.RateLimited` or a refused login
(:class:`~omsbridge.errors.AuthFailed`) pauses the whole merchant instead, anything else is
permanent and becomes a dead letter.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

import attrs
import stamina

from omsbridge.errors import RateLimited, RetryableError

__all__ = ["RetryPolicy", "is_inline_retryable"]

T = TypeVar("T")


def is_inline_retryable(error: Exception) -> bool:
    """Whether to retry at once: retryable errors except rate limits (those pause the merchant)."""
    return isinstance(error, RetryableError) and not isinstance(error, RateLimited)


@attrs.frozen
class RetryPolicy:
    """How often and how soon failed posts are tried again.

    ``inline_*``: quick retries inside one run (stamina: exponential backoff with jitter), for
    blips. After them the entry is rescheduled in the store ``backoff_initial * 2**n`` seconds
    later (capped at ``backoff_max``, jittered between half and all of it), so a long outage costs no busy loop and
    survives a restart. After ``max_attempts`` attempts in all a retryable error is a dead letter
    too. ``rate_limit_pause`` is the pause when a rate limit gives no ``retry_after``.
    A refused login (``AuthFailed``) pauses the merchant ``auth_pause_initial * 2**(n-1)``
    seconds after the n-th refusal in a row (at most ``auth_pause_max``), then tries again.
    """

    inline_attempts: int = 3
    inline_wait_initial: float = 0.1
    inline_wait_max: float = 2.0
    backoff_initial: float = 5.0
    backoff_max: float = 1800.0
    max_attempts: int = 15
    rate_limit_pause: float = 60.0
    auth_pause_initial: float = 30.0
    auth_pause_max: float = 900.0

    def call(self, fn: Callable[[], T]) -> T:
        """Call ``fn``, retrying it in-line on errors :func:`is_inline_retryable` accepts."""
        # The first attempt runs outside stamina: almost every post succeeds at once, and
        # stamina's retry context costs more CPU than omsbridge's decode of the sale. Its
        # error, if retryable, is re-raised as stamina's first attempt: the waits, the
        # attempt count and stamina's retry hooks are what they were.
        try:
            return fn()
        except Exception as exc:
            if self.inline_attempts <= 1 or not is_inline_retryable(exc):
                raise
            first: Exception | None = exc
        for attempt in stamina.retry_context(
            on=is_inline_retryable,
            attempts=max(1, self.inline_attempts),
            timeout=None,
            wait_initial=self.inline_wait_initial,
            wait_max=self.inline_wait_max,
            wait_jitter=self.inline_wait_initial,
        ):
            with attempt:
                if first is not None:
                    error, first = first, None
                    raise error
                return fn()
        raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover

    def retry_at(self, attempts: int, now: datetime) -> datetime | None:
        """When to try an entry again after ``attempts`` failed attempts; None: give up."""
        if attempts >= self.max_attempts:
            return None
        ceiling = min(self.backoff_max, self.backoff_initial * 2 ** max(0, attempts - 1))
        # Jitter: entries failed by one outage do not all come back in the same second.
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)
        return now + timedelta(seconds=delay)

    def pause_for(self, error: RateLimited) -> float:
        """Seconds to leave the merchant alone after a rate limit."""
        if error.retry_after is not None and error.retry_after >= 0:
            return float(error.retry_after)
        return self.rate_limit_pause

    def auth_pause(self, failures: int) -> float:
        """Seconds before trying the login again after ``failures`` refused logins in a row."""
        return float(
            min(self.auth_pause_max, self.auth_pause_initial * 2.0 ** max(0, failures - 1))
        )
