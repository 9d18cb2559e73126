"""Hold what the backend sends against Salesforce's reference (objects/*.json, connect/*.json).

:func:`reference_dir` is the one place that says where the reference is read from (the
project's copy, in the sandbox distribution).
:class:`ReferenceCheck` takes captured requests and lists every problem: an sObject field the
reference does not know (unless the setup package declares it), a field written where the
reference says it cannot be (not createable / not updateable), a field newer than the API
version or only in multicurrency orgs when the config is single-currency, a picklist value
that is not one of the reference's values, a Connect body key the action does not take.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sf_capture import Sent

_REPO = Path(__file__).resolve().parents[4]
# Relationship names whose target is not the name itself (FooId -> Foo otherwise).
_RELATIONSHIPS = {
    "OriginalOrder": "Order",
    "DeliveryMethod": "OrderDeliveryMethod",
    "FulfilledFromLocation": "Location",
    "RelatedOrder": "Order",
    "Product": "Product2",
}
# Unrestricted picklists the backend must still write only default values of: a plain org
# has nothing else (restricted picklists are always held to their values).
_DEFAULT_VALUES_ONLY = frozenset(
    {
        ("Shipment", "Provider"),
        ("Shipment", "Status"),
        ("FulfillmentOrder", "Status"),
        ("FulfillmentOrder", "Type"),
        ("OrderSummary", "Status"),
    }
)
# Connect keys whose value is a value of an sObject picklist.
_CONNECT_PICKLISTS = {
    "fulfillmentType": ("FulfillmentOrder", "Type"),
    "reason": ("OrderItemSummaryChange", "Reason"),
}
_KEYWORDS = frozenset(
    [
        "SELECT",
        "FROM",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "IN",
        "LIKE",
        "NULL",
        "TRUE",
        "FALSE",
        "ORDER",
        "BY",
        "ASC",
        "DESC",
        "NULLS",
        "FIRST",
        "LAST",
        "LIMIT",
        "OFFSET",
        "INCLUDES",
        "EXCLUDES",
        "GROUP",
        "HAVING",
        "WITH",
        "TYPEOF",
    ]
)
_TOKEN = re.compile(r"'(?:\\.|[^'\\])*'|[A-Za-z_][A-Za-z0-9_.:]*|\d[\w:.+-]*|!=|<=|>=|[(),=<>]")


def reference_dir() -> Path:
    """Where the sObject reference (``<Object>.json``, ``connect/``) is read from: the
    project's copy of shared/reference/salesforce/objects, in the sandbox distribution."""
    return _REPO / "plugins" / "salesforce_sandbox" / "reference"


def package_fields() -> dict[str, frozenset[str]]:
    """Custom fields of the org setup package, from its SFDX source."""
    root = _REPO / "plugins" / "salesforce_oms" / "org-setup"
    found: dict[str, set[str]] = {}
    for path in root.glob("**/objects/*/fields/*.field-meta.xml"):
        obj = path.parent.parent.name
        name = ET.parse(path).getroot().findtext("{*}fullName") or path.name.split(".")[0]
        found.setdefault(obj, set()).add(name)
    assert found, f"no CustomField in {root}"
    return {k: frozenset(v) for k, v in found.items()}


@cache
def _objects() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(reference_dir().glob("*.json"))}


@cache
def _connect() -> list[tuple[re.Pattern[str], dict[str, Any]]]:
    actions = []
    for path in sorted((reference_dir() / "connect").glob("*.json")):
        data = json.loads(path.read_text())
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(data["path"])) + "$"
        actions.append((re.compile(pattern), data))
    return actions


def _api(version: str) -> float:
    return float(version.lstrip("v"))


class ReferenceCheck:
    """Checks requests for one config (API version, multicurrency or not)."""

    def __init__(self, *, api_version: str, multi_currency: bool) -> None:
        self.api = _api(api_version)
        self.multi_currency = multi_currency
        self.objects = _objects()
        self.package = package_fields()
        self.problems: list[str] = []
        self.used: dict[tuple[str, str], set[str]] = {}
        """(object, field) -> how the backend used it (read / create / update)."""
        self.connect_used: set[str] = set()

    # -- entry ---------------------------------------------------------------------------------

    def requests(self, sent: Iterable[Sent]) -> None:
        """Check every captured request."""
        for s in sent:
            self._request(s.method, s.path, s.query, s.body)

    def _request(self, method: str, path: str, query: Mapping[str, list[str]], body: Any) -> None:
        if "/services/data/" not in path:
            return  # token endpoint, CometD, sandbox controls
        tail = re.sub(r"^.*/services/data/v[0-9.]+", "", path)
        if tail in ("/query", "/queryAll"):
            self.soql((query.get("q") or [""])[0])
        elif re.match(r"^/query(All)?/[^/]+$", tail) or tail in ("/limits", ""):
            return  # next page of a query (its SOQL was checked), limits
        elif tail == "/composite":
            for sub in (body or {}).get("compositeRequest", []):
                self._sub(sub)
        elif tail == "/composite/graph":
            for graph in (body or {}).get("graphs", []):
                for sub in graph.get("compositeRequest", []):
                    self._sub(sub)
        elif tail == "/composite/sobjects":
            for record in (body or {}).get("records", []):
                record = dict(record)
                kind = record.pop("attributes", {}).get("type", "?")
                self.write(kind, record, "create" if method == "POST" else "update")
        elif tail.startswith("/sobjects/"):
            parts = tail.split("/")
            kind = parts[2]
            if method == "POST" and len(parts) == 3:
                self.write(kind, body or {}, "create")
            elif method == "PATCH" and len(parts) == 4:
                self.write(kind, body or {}, "update")
            elif method == "GET" and len(parts) == 4:
                for field in ",".join(query.get("fields") or []).split(","):
                    if field:
                        self.field(kind, field.strip(), "read")
            else:
                self.problems.append(f"unchecked request {method} {tail}")
        elif tail.startswith("/commerce/"):
            self.connect(tail, body)
        else:
            self.problems.append(f"unchecked request {method} {tail}")

    def _sub(self, sub: Mapping[str, Any]) -> None:
        url = urlsplit(str(sub.get("url", "")))
        path = re.sub(r"/@\{[^}]+\}", "/REF", url.path)
        self._request(str(sub.get("method", "GET")), path, parse_qs(url.query), sub.get("body"))

    # -- sObjects ------------------------------------------------------------------------------

    def _meta(self, obj: str, field: str) -> dict[str, Any] | None:
        if field in self.package.get(obj, ()):
            return {"type": "custom", "package": True}
        return (self.objects.get(obj) or {}).get("fields", {}).get(field)

    def field(self, obj: str, field: str, how: str) -> dict[str, Any] | None:
        """Check one field name of ``obj`` (relationship paths resolved); its reference entry."""
        parts = field.split(".")
        for part in parts[:-1]:
            target = self._target(obj, part)
            if target is None:
                self.problems.append(f"{obj}.{field}: no relationship {part!r} on {obj}")
                return None
            obj = target
        name = parts[-1]
        if obj not in self.objects:
            self.problems.append(f"{obj}.{name}: object not in the reference")
            return None
        meta = self._meta(obj, name)
        self.used.setdefault((obj, name), set()).add(how)
        if meta is None:
            self.problems.append(
                f"{obj}.{name} ({how}): not a field of {obj} in the reference, nor of the "
                "setup package"
            )
            return None
        if list(meta.get("source") or []) == ["sfexplorer-describe"]:
            # Seen only in one older org's describe, in no Salesforce document: not confirmed.
            self.problems.append(f"{obj}.{name} ({how}): not confirmed (one old describe only)")
        since = meta.get("since")
        if since and float(since) > self.api:
            self.problems.append(f"{obj}.{name} ({how}): only since API {since}")
        condition = str(meta.get("condition") or "")
        if "multicurrency" in condition and not self.multi_currency:
            self.problems.append(f"{obj}.{name} ({how}): {condition}")
        return meta

    def _target(self, obj: str, relationship: str) -> str | None:
        meta = self._meta(obj, relationship + "Id")
        if meta is None:
            return None
        self.used.setdefault((obj, relationship + "Id"), set()).add("read")
        targets = meta.get("reference_to") or []
        if len(targets) == 1:
            return str(targets[0])
        name = _RELATIONSHIPS.get(relationship, relationship)
        return name if name in self.objects else None

    def write(self, obj: str, body: Mapping[str, Any], how: str) -> None:
        """Check a create/update body: fields, writability, picklist values."""
        for name, value in body.items():
            meta = self.field(obj, name, how)
            if meta is None or meta.get("package"):
                continue
            flag = "createable" if how == "create" else "updateable"
            if meta.get(flag) is False:
                self.problems.append(f"{obj}.{name}: not {flag} (reference)")
            values = meta.get("picklist")
            held = meta.get("restricted") or (obj, name) in _DEFAULT_VALUES_ONLY
            if (
                held
                and values
                and isinstance(value, str)
                and not value.startswith("@{")
                and value not in values
            ):
                self.problems.append(
                    f"{obj}.{name} = {value!r}: not a value of the picklist {values}"
                )

    # -- SOQL ----------------------------------------------------------------------------------

    def soql(self, text: str, parent: str | None = None) -> None:
        """Check the fields of one SOQL query (subqueries through child relationships)."""
        tokens = _TOKEN.findall(text)
        self._select(tokens, 0, parent)

    def _select(self, tokens: list[str], start: int, parent: str | None) -> int:
        # tokens[start] == "SELECT"; returns the index after this (sub)query.
        depth, i = 0, start + 1
        items: list[list[str]] = [[]]
        subqueries: list[int] = []
        while i < len(tokens):
            tok = tokens[i]
            if depth == 0 and tok.upper() == "FROM":
                break
            if tok == "(" and i + 1 < len(tokens) and tokens[i + 1].upper() == "SELECT":
                subqueries.append(i + 1)
                i = self._skip(tokens, i)
                continue
            if tok == "(":
                depth += 1
            elif tok == ")":
                depth -= 1
            elif tok == "," and depth == 0:
                items.append([])
            else:
                items[-1].append(tok)
            i += 1
        source = tokens[i + 1]
        obj = self._child(parent, source) if parent else source
        end = i + 2
        depth = 0
        clause: list[str] = []
        while end < len(tokens):
            tok = tokens[end]
            if tok == "(":
                depth += 1
            elif tok == ")":
                if depth == 0:
                    break
                depth -= 1
            clause.append(tok)
            end += 1
        if obj is None:
            self.problems.append(f"SOQL: unknown child relationship {source!r} of {parent}")
            return end
        for item in items:
            names = [t for t in item if _is_field(t)]
            if len(item) >= 2 and item[1] == "(":
                continue  # COUNT(), a function
            for name in names[:1]:
                self.field(obj, name, "read")
        for k, tok in enumerate(clause):
            nxt = clause[k + 1] if k + 1 < len(clause) else ""
            if _is_field(tok) and nxt != "(":
                self.field(obj, tok, "read")
        for sub in subqueries:
            self._select(tokens, sub, obj)
        return end

    @staticmethod
    def _skip(tokens: list[str], i: int) -> int:
        depth = 0
        while i < len(tokens):
            if tokens[i] == "(":
                depth += 1
            elif tokens[i] == ")":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        return i

    def _child(self, parent: str, relationship: str) -> str | None:
        singular = (
            relationship[:-3] + "y" if relationship.endswith("ies") else relationship.rstrip("s")
        )
        if singular not in self.objects:
            return None
        fields = self.objects[singular]["fields"]
        if any(parent in (f.get("reference_to") or []) for f in fields.values()) or (
            parent + "Id" in fields
        ):
            return singular
        return None

    # -- Connect -------------------------------------------------------------------------------

    def connect(self, tail: str, body: Any) -> None:
        """Check a Connect body against its action's request representation."""
        found = [action for pattern, action in _connect() if pattern.match(tail)]
        if not found:
            self.problems.append(f"Connect {tail}: no such action in the reference")
            return
        action = found[0]
        self.connect_used.add(action["action"])
        since = action.get("available_since")
        if since and float(since) > self.api:
            self.problems.append(f"Connect {action['action']}: only since API {since}")
        request = action.get("request") or {}
        self._representation(
            action["action"], request.get("properties") or {}, request.get("nested") or {}, body
        )

    def _representation(
        self, where: str, properties: Mapping[str, Any], nested: Mapping[str, Any], body: Any
    ) -> None:
        if not isinstance(body, Mapping):
            self.problems.append(f"Connect {where}: body is not an object")
            return
        for key, value in body.items():
            prop = properties.get(key)
            if prop is None:
                self.problems.append(f"Connect {where}.{key}: not a key of the request")
                continue
            since = prop.get("since")
            if since and float(since) > self.api:
                self.problems.append(f"Connect {where}.{key}: only since API {since}")
            allowed = prop.get("values")
            if allowed and value not in allowed:
                self.problems.append(f"Connect {where}.{key} = {value!r}: not one of {allowed}")
            if key in _CONNECT_PICKLISTS:
                obj, field = _CONNECT_PICKLISTS[key]
                values = self.objects[obj]["fields"][field].get("picklist") or []
                if value not in values:
                    self.problems.append(
                        f"Connect {where}.{key} = {value!r}: not a value of {obj}.{field} {values}"
                    )
            kind = str(prop.get("type", ""))
            inner = nested.get(kind.removesuffix("[]"))
            if inner is not None:
                items = value if kind.endswith("[]") and isinstance(value, list) else [value]
                for item in items:
                    self._representation(
                        f"{where}.{key}", inner.get("properties") or {}, nested, item
                    )


def _is_field(token: str) -> bool:
    return (
        bool(re.match(r"^[A-Za-z_][A-Za-z0-9_.]*$", token))
        and token.upper() not in _KEYWORDS
        and not re.match(r"^(LAST|NEXT)_N_DAYS", token.upper())
        and token.upper() not in {"TODAY", "YESTERDAY", "TOMORROW"}
    )
