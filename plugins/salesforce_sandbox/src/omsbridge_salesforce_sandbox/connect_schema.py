"""The Connect actions' documented bodies (generated ``data/connect.json``) and the key check.

Salesforce's Connect REST API deserialises request bodies into typed input representations:
a key the representation does not have is refused before the action runs. The sandbox does
the same with the documented keys, per API version (a key documented "since 59.0" is unknown
to a v58.0 request).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from .errors import SalesforceError


@cache
def actions() -> dict[str, dict[str, Any]]:
    """Documented Connect actions by name (``create-order-summary``...)."""
    text = resources.files(__package__).joinpath("data/connect.json").read_text("utf-8")
    return {a["action"]: a for a in json.loads(text)["actions"]}


def unrecognized(key: str) -> SalesforceError:
    """What the Connect API answers for a body key its input representation lacks.

    The message follows the JSON-parser errors Salesforce returns for bodies it cannot bind
    (``JSON_PARSER_ERROR``, "Unrecognized field ..."); no recorded real answer for Connect
    was found, so the exact wording is the sandbox's best knowledge (docs/sandbox-salesforce.md).
    """
    return SalesforceError("JSON_PARSER_ERROR", f'Unrecognized field "{key}"')


def _version(text: str | None) -> float:
    try:
        return float(text or 0)
    except ValueError:
        return 0.0


def check_body(action: str, body: Any, version: str) -> None:
    """Refuse keys of *body* that *action*'s documented input lacks at API *version*, then
    documented-required keys that are missing and values outside a documented value list."""
    spec = actions()[action]
    try:
        _check(spec["request"], spec["request_nested"], body, _version(version), "")
    except _Invalid as exc:
        # Refused input answers "Error with Output", like the actions' own checks.
        output: dict[str, Any] = {k: None for k in spec["response"]}
        output.update(
            success=False, errors=[{"errorCode": "INVALID_API_INPUT", "message": str(exc)}]
        )
        raise SalesforceError("INVALID_API_INPUT", str(exc), extra={"output": output}) from None


def _check(
    props: dict[str, Any],
    nested: dict[str, dict[str, Any]],
    body: Any,
    version: float,
    path: str,
) -> None:
    if not isinstance(body, dict):
        return
    for key in body:
        prop = props.get(key)
        if prop is None or _version(prop.get("since")) > version:
            raise unrecognized(key)
    for key, prop in props.items():
        if _version(prop.get("since")) > version:
            continue
        value = body.get(key)
        if prop.get("required") and value in (None, "", []):
            raise _invalid(f"Missing required input: {path}{key}")
        if value is not None and prop.get("values") and value not in prop["values"]:
            raise _invalid(f"Invalid {path}{key}: {value}")
        inner = nested.get(str(prop.get("type") or "").removesuffix("[]"))
        if inner is None or value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            _check(inner, nested, item, version, f"{path}{key}.")


class _Invalid(Exception):
    """Documented-required input missing or a value outside its documented list."""


def _invalid(message: str) -> _Invalid:
    return _Invalid(message)


def response_keys(action: str) -> list[str]:
    """The documented output keys of *action*."""
    keys: list[str] = actions()[action]["response"]
    return keys
