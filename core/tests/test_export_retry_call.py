"""RetryPolicy.call: in-line retries of a failed post (the first attempt runs outside stamina)."""

from __future__ import annotations

import pytest

from omsbridge.errors import RateLimited, Rejected, TransientBackendError
from omsbridge.export.retry import RetryPolicy


def _policy(attempts: int) -> RetryPolicy:
    """Real stamina retries with millisecond waits (its testing mode would override attempts)."""
    return RetryPolicy(inline_attempts=attempts, inline_wait_initial=0.001, inline_wait_max=0.002)


class _Flaky:
    """Raises the given errors in turn, then answers "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_success_at_once_is_one_call() -> None:
    fn = _Flaky()
    assert _policy(3).call(fn) == "ok"
    assert fn.calls == 1


def test_a_blip_is_retried_in_line() -> None:
    fn = _Flaky(TransientBackendError("503"), TransientBackendError("503"))
    assert _policy(3).call(fn) == "ok"
    assert fn.calls == 3


def test_retries_stop_after_the_inline_attempts() -> None:
    errors = [TransientBackendError(f"503 #{n}") for n in range(5)]
    fn = _Flaky(*errors)
    with pytest.raises(TransientBackendError, match="#2"):
        _policy(3).call(fn)
    assert fn.calls == 3


@pytest.mark.parametrize("error", [Rejected("no"), RateLimited("slow down"), ValueError("bug")])
def test_permanent_errors_and_rate_limits_are_not_retried(error: Exception) -> None:
    fn = _Flaky(error)
    with pytest.raises(type(error)):
        _policy(3).call(fn)
    assert fn.calls == 1


def test_one_inline_attempt_means_no_retry() -> None:
    fn = _Flaky(TransientBackendError("503"))
    with pytest.raises(TransientBackendError):
        _policy(1).call(fn)
    assert fn.calls == 1
