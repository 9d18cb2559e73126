"""The one error taxonomy every backend maps into.

Callers (the export job above all) decide what to do from the class alone::

    OMSBridgeError
    ├── ConfigError                    the config file is wrong (lists every problem)
    ├── UnknownBackend                 no installed plugin registers that backend name
    ├── UnknownMerchant                the config has no such merchant
    ├── FieldError (also ValueError)   a settings validator refused one field
    └── BackendError                   something went wrong talking to an OMS
        ├── InvalidTransaction         bad input; names the field          (permanent)
        ├── AuthFailed                 credentials refused                 (permanent)
        ├── Rejected                   business rejection, backend code    (permanent)
        ├── NotFound                   no such order / fulfillment order   (permanent)
        ├── Conflict                   state or idempotency conflict       (permanent)
        ├── Unsupported                the backend lacks the operation     (permanent)
        └── RetryableError             try again later                     (retryable)
            ├── TransientBackendError  5xx, timeouts, lock contention
            └── RateLimited            API budget exhausted; ``retry_after`` seconds

``error.retryable`` is a class attribute, so ``isinstance(err, RetryableError)`` and
``err.retryable`` always agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

__all__ = [
    "AuthFailed",
    "BackendError",
    "ConfigError",
    "Conflict",
    "FieldError",
    "InvalidTransaction",
    "Issue",
    "NotFound",
    "OMSBridgeError",
    "RateLimited",
    "Rejected",
    "RetryableError",
    "TransientBackendError",
    "UnknownBackend",
    "UnknownMerchant",
    "Unsupported",
]


@attrs.frozen
class Issue:
    """One problem found in input: where it is (``lines[2].quantity``) and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class OMSBridgeError(Exception):
    """Base class of every error omsbridge raises on purpose."""


class FieldError(ValueError):
    """A value of one named field is wrong; raise it from settings validators so the config
    loader can report ``merchants.ID.backend.<field>: <message>``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class _IssuesError(OMSBridgeError):
    """An error that carries a list of :class:`Issue` and prints them all."""

    def __init__(self, issues: Iterable[Issue] | str, *, title: str | None = None) -> None:
        if isinstance(issues, str):
            issues = [Issue("", issues)]
        self.issues: tuple[Issue, ...] = tuple(issues)
        self.title = title
        super().__init__(self._render())

    def _render(self) -> str:
        lines = [str(i) for i in self.issues]
        if self.title:
            return "\n".join([self.title, *(f"  - {line}" for line in lines)])
        return "; ".join(lines)


class ConfigError(_IssuesError):
    """The configuration file is invalid; ``issues`` lists every problem found, each with its path."""


class UnknownBackend(OMSBridgeError, LookupError):
    """A backend name that no installed plugin registers; the message lists the installed ones."""

    def __init__(self, name: str, installed: Sequence[str]) -> None:
        self.name = name
        self.installed = tuple(installed)
        listed = ", ".join(self.installed) or "none"
        super().__init__(f"unknown backend {name!r}; installed backends: {listed}")


class UnknownMerchant(OMSBridgeError, LookupError):
    """A merchant id that the loaded configuration does not define."""

    def __init__(self, merchant_id: str, known: Sequence[str]) -> None:
        self.merchant_id = merchant_id
        super().__init__(
            f"unknown merchant {merchant_id!r}; configured merchants: {', '.join(known) or 'none'}"
        )


class BackendError(OMSBridgeError):
    """Base of errors raised by order-management operations.

    ``code`` is the backend's own error code (``INVALID_FIELD``, ``ORDER_NOT_FOUND``...),
    ``status`` the HTTP status when there was one, ``backend`` the backend's name.
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        backend: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.backend = backend

    def __repr__(self) -> str:
        extra = "".join(
            f", {k}={v!r}"
            for k, v in (("code", self.code), ("status", self.status))
            if v is not None
        )
        return f"{type(self).__name__}({self.message!r}{extra})"


class InvalidTransaction(BackendError):
    """Bad input: the transaction (or query, or update) breaks a rule. ``issues`` names each field."""

    def __init__(
        self,
        issues: Iterable[Issue] | str,
        *,
        code: str | None = None,
        status: int | None = None,
        backend: str | None = None,
    ) -> None:
        if isinstance(issues, str):
            issues = [Issue("", issues)]
        self.issues: tuple[Issue, ...] = tuple(issues)
        super().__init__(
            "; ".join(str(i) for i in self.issues), code=code, status=status, backend=backend
        )


class AuthFailed(BackendError):
    """The backend refused our credentials (after one re-authentication where that applies)."""


class Rejected(BackendError):
    """A permanent business rejection by the backend; ``code`` carries the backend's reason."""


class NotFound(BackendError):
    """The order, line or fulfillment order does not exist in the backend."""


class Conflict(BackendError):
    """The request conflicts with the backend's state (already cancelled, idempotency key reused...)."""


class Unsupported(BackendError):
    """The backend does not offer this operation; its ``capabilities`` say so too."""


class RetryableError(BackendError):
    """Base of errors that may succeed if the same request is sent again later."""

    retryable = True


class TransientBackendError(RetryableError):
    """A temporary failure: 5xx, timeout, connection reset, row lock. The outcome may be unknown."""


class RateLimited(RetryableError):
    """The backend's API budget is exhausted; ``retry_after`` says how long to wait, when known."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after
