"""The core error taxonomy as the contract's error answers (the inverse of
:mod:`omsbridge_posspi.errors`, so a POS on the pos-spi backend meets the same error class as
a caller of the merchant's backend in process).

=================================  ======  ==============================================
raised by the bridge               status  body ``code``
=================================  ======  ==============================================
``InvalidTransaction``             400     the error's code or ``INVALID_REQUEST``; ``issues``
``AuthFailed`` (the OMS refused    401     the backend's code or ``OMS_AUTH_FAILED``
omsbridge's own login)
``NotFound``, ``UnknownMerchant``  404
``Conflict``                       409
``Rejected``                       422     the backend's code (``RETURN_QUANTITY_EXCEEDED``...)
``RateLimited``                    429     with ``Retry-After``
``Unsupported``                    501
``TransientBackendError``          503
anything else                      500     ``INTERNAL_ERROR`` (logged with the request id)
``Queued`` (a post kept in the     202     ``QueuedPost``: the outbox entry id and the cause
outbox)
=================================  ======  ==============================================
"""

from __future__ import annotations

import math

from werkzeug.wrappers import Response

from omsbridge.errors import (
    AuthFailed,
    BackendError,
    Conflict,
    InvalidTransaction,
    NotFound,
    RateLimited,
    Rejected,
    TransientBackendError,
    Unsupported,
)
from omsbridge.outbox import Queued
from omsbridge_posspi.server.errors import ApiError, invalid_input, json_response

__all__ = ["api_error_for", "queued_response"]

_STATUS: tuple[tuple[type[BackendError], int, str], ...] = (
    (AuthFailed, 401, "OMS_AUTH_FAILED"),
    (NotFound, 404, "NOT_FOUND"),
    (Conflict, 409, "CONFLICT"),
    (Rejected, 422, "REJECTED"),
    (Unsupported, 501, "UNSUPPORTED"),
    (TransientBackendError, 503, "SERVICE_UNAVAILABLE"),
)


def api_error_for(error: BackendError) -> ApiError:
    """The answer for a backend error the bridge raised."""
    if isinstance(error, InvalidTransaction):
        return invalid_input(error, error.code or "INVALID_REQUEST")
    if isinstance(error, RateLimited):
        return ApiError(
            429, error.code or "RATE_LIMITED", error.message, headers=_retry_after(error)
        )
    for cls, status, code in _STATUS:
        if isinstance(error, cls):
            return ApiError(status, error.code or code, error.message)
    return ApiError(502, error.code or "BACKEND_ERROR", error.message)


def queued_response(queued: Queued) -> Response:
    """202: the transaction is in the outbox as ``entry_id``; ``cause`` is the answer the OMS
    gave (status and code as :func:`api_error_for` would have answered them)."""
    cause = api_error_for(queued.error)
    body = {
        "transaction_id": queued.transaction_id,
        "entry_id": queued.entry_id,
        "state": "pending",
        "message": (
            f"the OMS could not take the transaction now; it is queued as outbox entry "
            f"{queued.entry_id} and will be posted by the export job (posting again is safe)"
        ),
        "cause": {"status": cause.status, "code": cause.body.code, "message": cause.body.message},
    }
    return json_response(body, 202, cause.headers)


def _retry_after(error: RateLimited) -> dict[str, str]:
    if error.retry_after is None:
        return {}
    return {"Retry-After": str(math.ceil(error.retry_after))}
