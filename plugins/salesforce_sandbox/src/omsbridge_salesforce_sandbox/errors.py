"""Salesforce REST error responses: the ``[{"message", "errorCode", "fields"}]`` array."""

from __future__ import annotations

from typing import Any


class SalesforceError(Exception):
    """An error the sandbox answers with Salesforce's error-array body and an HTTP status."""

    def __init__(
        self,
        error_code: str,
        message: str,
        *,
        status: int = 400,
        fields: list[str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message
        self.status = status
        self.fields = fields
        self.extra = extra or {}

    def entry(self) -> dict[str, Any]:
        """One element of the error array."""
        item: dict[str, Any] = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            item["fields"] = list(self.fields)
        item.update(self.extra)
        return item

    def body(self) -> list[dict[str, Any]]:
        """The JSON error array Salesforce sends."""
        return [self.entry()]


def not_found(message: str = "The requested resource does not exist") -> SalesforceError:
    """404 NOT_FOUND, as for an unknown URL or record."""
    return SalesforceError("NOT_FOUND", message, status=404)


def invalid_session() -> SalesforceError:
    """401 INVALID_SESSION_ID, as for an expired, revoked or missing token."""
    return SalesforceError("INVALID_SESSION_ID", "Session expired or invalid", status=401)


def method_not_allowed(method: str, allowed: list[str]) -> SalesforceError:
    """405 METHOD_NOT_ALLOWED with Salesforce's wording."""
    return SalesforceError(
        "METHOD_NOT_ALLOWED",
        f"HTTP Method '{method}' not allowed. Allowed are {','.join(allowed)}",
        status=405,
    )


def json_parser_error(detail: str) -> SalesforceError:
    """400 JSON_PARSER_ERROR for a body that is not the JSON the resource expects."""
    return SalesforceError("JSON_PARSER_ERROR", detail, status=400)
