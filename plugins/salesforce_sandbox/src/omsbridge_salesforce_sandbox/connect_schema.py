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
    """Refuse keys of *body* that *action*'s documented input lacks at API *version*."""
    spec = actions()[action]
    _check(spec["request"], spec["request_nested"], body, _version(version))


def _check(
    props: dict[str, Any], nested: dict[str, dict[str, Any]], body: Any, version: float
) -> None:
    if not isinstance(body, dict):
        return
    for key, value in body.items():
        prop = props.get(key)
        if prop is None or _version(prop.get("since")) > version:
            raise unrecognized(key)
        type_name = str(prop.get("type") or "")
        inner = nested.get(type_name.removesuffix("[]"))
        if inner is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            _check(inner, nested, item, version)


def response_keys(action: str) -> list[str]:
    """The documented output keys of *action*."""
    keys: list[str] = actions()[action]["response"]
    return keys
