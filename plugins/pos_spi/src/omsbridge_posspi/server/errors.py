"""Errors the reference server answers: ``{"code", "message", "field"?, "issues"?}`` + HTTP status."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from werkzeug.wrappers import Response

from omsbridge import wire
from omsbridge.errors import InvalidTransaction
from omsbridge_posspi.messages import ErrorBody, ErrorIssue

__all__ = [
    "ApiError",
    "error_response",
    "invalid_input",
    "json_response",
    "model_response",
    "unauthorized",
]


class ApiError(Exception):
    """An error answer: raised anywhere in the server, turned into a JSON response by the app."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        issues: tuple[ErrorIssue, ...] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorBody(code, message, field, issues)
        self.headers = dict(headers or {})


def invalid_input(exc: InvalidTransaction, code: str = "INVALID_REQUEST") -> ApiError:
    """A 400 naming every bad field of a request body (``field`` is the first of them)."""
    issues = tuple(ErrorIssue(i.path, i.message) for i in exc.issues)
    return ApiError(
        400, code, str(exc), field=(issues[0].path or None) if issues else None, issues=issues
    )


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON answer (``data`` already plain: dicts, lists, strings, numbers)."""
    return Response(
        json.dumps(data, ensure_ascii=False),
        status=status,
        headers=dict(headers or {}),
        content_type="application/json",
    )


def error_response(error: ApiError) -> Response:
    """The answer for an :class:`ApiError`: its status, headers and the contract's error body."""
    return json_response(wire.unstructure(error.body), error.status, error.headers)


def model_response(
    obj: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A model object (or a list of them) as JSON in the POS's native shape."""
    return json_response(wire.unstructure(obj), status, headers)


def unauthorized(header: str, realm: str) -> ApiError:
    """401: neither a valid API key in ``header`` nor a valid bearer token."""
    return ApiError(
        401,
        "UNAUTHORIZED",
        f"send a valid {header} header or an OAuth2 bearer token",
        headers={"WWW-Authenticate": f'Bearer realm="{realm}"'},
    )
