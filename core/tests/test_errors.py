"""The taxonomy: the retry decision comes from the class alone."""

from __future__ import annotations

import pytest

from omsbridge import errors


@pytest.mark.parametrize(
    ("cls", "retryable"),
    [
        (errors.TransientBackendError, True),
        (errors.RateLimited, True),
        (errors.InvalidTransaction, False),
        (errors.AuthFailed, False),
        (errors.Rejected, False),
        (errors.NotFound, False),
        (errors.Conflict, False),
        (errors.Unsupported, False),
    ],
)
def test_retryable_by_class(cls, retryable):
    err = cls("x")
    assert err.retryable is retryable
    assert isinstance(err, errors.RetryableError) is retryable
    assert isinstance(err, errors.BackendError)


def test_rate_limited_carries_retry_after():
    err = errors.RateLimited("budget", retry_after=30.0, code="REQUEST_LIMIT_EXCEEDED", status=403)
    assert (err.retry_after, err.code, err.status) == (30.0, "REQUEST_LIMIT_EXCEEDED", 403)
    assert repr(err) == "RateLimited('budget', code='REQUEST_LIMIT_EXCEEDED', status=403)"


def test_invalid_transaction_lists_paths():
    err = errors.InvalidTransaction([errors.Issue("lines[2].quantity", "must be > 0, got -1")])
    assert str(err) == "lines[2].quantity: must be > 0, got -1"


def test_config_error_lists_every_problem():
    err = errors.ConfigError(
        [errors.Issue("a", "bad"), errors.Issue("b.c", "worse")], title="2 problem(s):"
    )
    assert str(err) == "2 problem(s):\n  - a: bad\n  - b.c: worse"
