"""Composite resources: ``/composite/graph``, ``/composite`` and ``/composite/sobjects``.

Graph: up to 75 graphs, 500 nodes in all (and per graph), 15 different nodes (API version,
HTTP method, sObject type), depth 15; each graph commits or rolls back alone; the answer is
HTTP 200 with ``isSuccessful`` per graph. In a failed graph the failing node carries its real
error and every other node ``PROCESSING_HALTED``; after 14 failed graphs the rest are halted.
Nodes may only be sObject resources (as Salesforce allows).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from .errors import SalesforceError, method_not_allowed, not_found
from .rest import NO_BODY, Rest, Result

if TYPE_CHECKING:
    from .records import Dml
    from .schema import Schema
    from .store import Store

MAX_GRAPHS = 75
MAX_NODES = 500
MAX_DIFFERENT_NODES = 15
MAX_DEPTH = 15
MAX_GRAPH_FAILURES = 14
MAX_SUBREQUESTS = 25
MAX_COLLECTION = 200

HALTED = "The transaction was rolled back since another operation in the same transaction failed."
_REF = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
_DATA_URL = re.compile(r"^/services/data/v(\d+\.\d)/(.*)$")


class _NodeFailed(Exception):
    def __init__(self, index: int, result: Result) -> None:
        super().__init__("node failed")
        self.index = index
        self.result = result


def _halted(reference_id: str | None) -> dict[str, Any]:
    return {
        "body": [{"errorCode": "PROCESSING_HALTED", "message": HALTED}],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": reference_id,
    }


def _invalid(message: str, code: str = "INVALID_INPUT") -> SalesforceError:
    return SalesforceError(code, message)


class Composite:
    """The composite family of resources."""

    def __init__(self, schema: Schema, store: Store, dml: Dml, rest: Rest) -> None:
        self._base_schema = schema
        self._store = store
        self._dml = dml
        self._rest = rest

    @property
    def _schema(self) -> Schema:
        return self._base_schema.current()

    def dispatch(
        self,
        method: str,
        version: str,
        parts: list[str],
        args: Mapping[str, str],
        body: Any,
        headers: Mapping[str, str],
    ) -> Result:
        """Route ``/composite[/...]``."""
        if not parts:
            if method != "POST":
                raise method_not_allowed(method, ["POST"])
            return self.composite(version, body)
        if parts == ["graph"]:
            if method != "POST":
                raise method_not_allowed(method, ["POST"])
            return self.graph(version, body)
        if parts[0] == "sobjects":
            return self.collections(method, version, parts[1:], args, body)
        raise not_found()

    # --- references ---------------------------------------------------------------------

    def _resolve(self, value: Any, refs: dict[str, Any]) -> Any:
        if isinstance(value, dict):
            return {k: self._resolve(v, refs) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v, refs) for v in value]
        if not isinstance(value, str) or "@{" not in value:
            return value
        whole = _REF.fullmatch(value)
        if whole:
            return self._lookup(whole, refs)
        return _REF.sub(lambda m: str(self._lookup(m, refs)), value)

    @staticmethod
    def _lookup(m: re.Match[str], refs: dict[str, Any]) -> Any:
        name, path = m.group(1), m.group(2)
        if name not in refs or refs[name] is None:
            raise _invalid(
                f"Invalid reference specified. No value for {name}{path} found in "
                f"{name}. Provided referenceId ('{name}') must start with a letter "
                "or a number, and it can contain only letters, numbers and "
                "underscores ('_').",
                "PROCESSING_HALTED",
            )
        current = refs[name]
        for step in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
            key, index = step
            try:
                current = current[key] if key else current[int(index)]
            except (KeyError, IndexError, TypeError):
                raise _invalid(
                    f"Invalid reference specified. No value for {name}{path} found in {name}.",
                    "PROCESSING_HALTED",
                ) from None
        return current

    @staticmethod
    def _references(value: Any) -> set[str]:
        text = json.dumps(value) if not isinstance(value, str) else value
        return {m.group(1) for m in _REF.finditer(text)}

    def _run(
        self, version: str, request: dict[str, Any], refs: dict[str, Any], *, graph: bool
    ) -> Result:
        method = str(request.get("method", "")).upper()
        url = self._resolve(request.get("url", ""), refs)
        body = self._resolve(request["body"], refs) if "body" in request else NO_BODY
        split = urlsplit(str(url))
        m = _DATA_URL.match(split.path)
        if m is None:
            raise not_found()
        rest_path = m.group(2)
        head = rest_path.strip("/").split("/")[0]
        allowed = ("sobjects",) if graph else ("sobjects", "query", "queryAll", "composite")
        if (
            head not in allowed
            or rest_path.strip("/").startswith(("composite/graph",))
            or (head == "composite" and not rest_path.strip("/").startswith("composite/sobjects"))
        ):
            raise _invalid(
                f"The URL {split.path} is not supported in a composite "
                f"{'graph' if graph else 'request'}."
            )
        args = dict(parse_qsl(split.query))
        headers = request.get("httpHeaders") or {}
        return self._rest.dispatch(method, m.group(1), rest_path, args, body, headers)

    def _safe_run(
        self, version: str, request: dict[str, Any], refs: dict[str, Any], *, graph: bool
    ) -> Result:
        try:
            return self._run(version, request, refs, graph=graph)
        except SalesforceError as exc:
            return Result(exc.status, exc.body())

    @staticmethod
    def _entry(result: Result, reference_id: str | None) -> dict[str, Any]:
        return {
            "body": result.body,
            "httpHeaders": dict(result.headers),
            "httpStatusCode": result.status,
            "referenceId": reference_id,
        }

    # --- graph ---------------------------------------------------------------------------

    def graph(self, version: str, body: Any) -> Result:
        """POST /composite/graph."""
        graphs = body.get("graphs") if isinstance(body, dict) else None
        if not isinstance(graphs, list) or not graphs:
            raise _invalid("The request must contain a non-empty 'graphs' array.")
        if len(graphs) > MAX_GRAPHS:
            raise _invalid(
                f"Too many graphs in the request: {len(graphs)}. The maximum is {MAX_GRAPHS}."
            )
        seen_ids: set[str] = set()
        kinds: set[tuple[str, str, str]] = set()
        total = 0
        for g in graphs:
            if not isinstance(g, dict) or not isinstance(g.get("compositeRequest"), list):
                raise _invalid("Each graph needs a graphId and a compositeRequest array.")
            graph_id = g.get("graphId")
            if (
                not isinstance(graph_id, str)
                or not re.match(r"^[A-Za-z0-9]", graph_id)
                or len(graph_id) >= 40
            ):
                raise _invalid(
                    f"Invalid graphId: {graph_id!r}. A graphId must start with an "
                    "alphanumeric character and be shorter than 40 characters."
                )
            if graph_id in seen_ids:
                raise _invalid(f"Duplicate graphId: {graph_id}.")
            seen_ids.add(graph_id)
            nodes = g["compositeRequest"]
            total += len(nodes)
            if len(nodes) > MAX_NODES:
                raise _invalid(
                    f"Graph {graph_id} has {len(nodes)} nodes; the maximum is {MAX_NODES}."
                )
            depth: dict[str, int] = {}
            for node in nodes:
                if (
                    not isinstance(node, dict)
                    or not node.get("referenceId")
                    or not node.get("method")
                    or not node.get("url")
                ):
                    raise _invalid(
                        f"Every node of graph {graph_id} needs method, url and referenceId."
                    )
                ref = node["referenceId"]
                if ref in depth:
                    raise _invalid(f"Duplicate referenceId {ref} in graph {graph_id}.")
                used = self._references(node.get("url")) | self._references(node.get("body"))
                depth[ref] = 1 + max((depth.get(u, 0) for u in used), default=0)
                if depth[ref] > MAX_DEPTH:
                    raise _invalid(f"Graph {graph_id} is deeper than {MAX_DEPTH}.")
                m = _DATA_URL.match(urlsplit(str(node["url"])).path)
                if m is None or not m.group(2).strip("/").startswith("sobjects/"):
                    raise _invalid(
                        f"Node {ref} of graph {graph_id}: only sObject resources "
                        f"can be graph nodes, not {node['url']}."
                    )
                sobject = m.group(2).strip("/").split("/")[1]
                kinds.add((m.group(1), str(node["method"]).upper(), sobject.lower()))
        if total > MAX_NODES:
            raise _invalid(f"The request has {total} nodes; the maximum is {MAX_NODES}.")
        if len(kinds) > MAX_DIFFERENT_NODES:
            raise _invalid(
                f"The request uses {len(kinds)} different nodes; the maximum is "
                f"{MAX_DIFFERENT_NODES}."
            )
        out = []
        failures = 0
        for g in graphs:
            if failures > MAX_GRAPH_FAILURES:
                out.append(
                    {
                        "graphId": g["graphId"],
                        "graphResponse": {
                            "compositeResponse": [
                                _halted(n["referenceId"]) for n in g["compositeRequest"]
                            ]
                        },
                        "isSuccessful": False,
                    }
                )
                continue
            response, ok = self._run_graph(version, g["compositeRequest"])
            failures += 0 if ok else 1
            out.append(
                {
                    "graphId": g["graphId"],
                    "graphResponse": {"compositeResponse": response},
                    "isSuccessful": ok,
                }
            )
        return Result(200, {"graphs": out})

    def _run_graph(self, version: str, nodes: list[dict[str, Any]]) -> tuple[list[Any], bool]:
        refs: dict[str, Any] = {}
        results: list[dict[str, Any]] = []
        try:
            with self._store.transaction():
                for index, node in enumerate(nodes):
                    result = self._safe_run(version, node, refs, graph=True)
                    if result.status >= 400:
                        raise _NodeFailed(index, result)
                    refs[node["referenceId"]] = result.body
                    results.append(self._entry(result, node["referenceId"]))
        except _NodeFailed as failed:
            response = [_halted(n["referenceId"]) for n in nodes]
            response[failed.index] = self._entry(failed.result, nodes[failed.index]["referenceId"])
            return response, False
        return results, True

    # --- composite -------------------------------------------------------------------------

    def composite(self, version: str, body: Any) -> Result:
        """POST /composite."""
        requests = body.get("compositeRequest") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            raise _invalid("The request must contain a non-empty 'compositeRequest' array.")
        if len(requests) > MAX_SUBREQUESTS:
            raise SalesforceError(
                "LIMIT_EXCEEDED",
                f"Too many subrequests ({len(requests)}). The limit is {MAX_SUBREQUESTS}.",
            )
        refs_seen: set[str] = set()
        for req in requests:
            if (
                not isinstance(req, dict)
                or not req.get("referenceId")
                or not req.get("url")
                or not req.get("method")
            ):
                raise _invalid("Every subrequest needs method, url and referenceId.")
            if req["referenceId"] in refs_seen:
                raise _invalid(f"Duplicate referenceId: {req['referenceId']}")
            refs_seen.add(req["referenceId"])
        all_or_none = bool(body.get("allOrNone"))
        refs: dict[str, Any] = {}
        if all_or_none:
            results: list[dict[str, Any]] = []
            try:
                with self._store.transaction():
                    for index, req in enumerate(requests):
                        result = self._safe_run(version, req, refs, graph=False)
                        if result.status >= 400:
                            raise _NodeFailed(index, result)
                        refs[req["referenceId"]] = result.body
                        results.append(self._entry(result, req["referenceId"]))
            except _NodeFailed as failed:
                response = [_halted(r["referenceId"]) for r in requests]
                response[failed.index] = self._entry(
                    failed.result, requests[failed.index]["referenceId"]
                )
                return Result(200, {"compositeResponse": response})
            return Result(200, {"compositeResponse": results})
        results = []
        for req in requests:
            result = self._safe_run(version, req, refs, graph=False)
            refs[req["referenceId"]] = result.body if result.status < 400 else None
            results.append(self._entry(result, req["referenceId"]))
        return Result(200, {"compositeResponse": results})

    # --- sObject collections ------------------------------------------------------------

    def collections(
        self, method: str, version: str, parts: list[str], args: Mapping[str, str], body: Any
    ) -> Result:
        """``/composite/sobjects`` create (POST), update (PATCH), delete (DELETE), retrieve
        (GET ``/{Type}``) and upsert (PATCH ``/{Type}/{ExtField}``)."""
        if method == "DELETE" and not parts:
            raw = [i for i in (args.get("ids") or "").split(",") if i]
            if not raw:
                raise SalesforceError("REQUIRED_FIELD_MISSING", "At least 1 Id is required.")
            self._check_size(len(raw))
            return self._each(
                raw, args.get("allOrNone", "false").lower() == "true", self._delete_one
            )
        if method == "GET" and len(parts) == 1:
            return self._retrieve(version, parts[0], args)
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise SalesforceError("JSON_PARSER_ERROR", "The request body needs a records array.")
        records = body["records"]
        self._check_size(len(records))
        all_or_none = bool(body.get("allOrNone"))
        if method == "POST" and not parts:
            return self._each(records, all_or_none, self._create_one)
        if method == "PATCH" and not parts:
            return self._each(records, all_or_none, self._update_one)
        if method == "PATCH" and len(parts) == 2:
            type_name, ext_field = parts
            return self._each(
                records, all_or_none, lambda r: self._upsert_one(type_name, ext_field, r)
            )
        raise method_not_allowed(method, ["GET", "POST", "PATCH", "DELETE"])

    @staticmethod
    def _check_size(n: int) -> None:
        if n > MAX_COLLECTION:
            raise SalesforceError(
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            )

    def _each(self, items: list[Any], all_or_none: bool, op: Any) -> Result:
        results: list[dict[str, Any]] = []
        failed = False

        def _run_one(item: Any) -> dict[str, Any]:
            try:
                with self._store.transaction():
                    return op(item)
            except SalesforceError as exc:
                error = {
                    "statusCode": exc.error_code,
                    "message": exc.message,
                    "fields": exc.fields or [],
                }
                rec_id = item if isinstance(item, str) else None
                return {"id": rec_id, "success": False, "errors": [error]}

        if not all_or_none:
            return Result(200, [_run_one(i) for i in items])
        try:
            with self._store.transaction():
                for item in items:
                    outcome = _run_one(item)
                    results.append(outcome)
                    failed = failed or not outcome["success"]
                if failed:
                    raise _NodeFailed(0, Result(400))
        except _NodeFailed:
            rolled = {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the "
                "request was using AllOrNone header",
                "fields": [],
            }
            results = [
                r if not r["success"] else {"id": None, "success": False, "errors": [rolled]}
                for r in results
            ]
        return Result(200, results)

    @staticmethod
    def _type_of(record: Any) -> str:
        if not isinstance(record, dict):
            raise SalesforceError("JSON_PARSER_ERROR", "Each record must be a JSON object.")
        attributes = record.get("attributes") or {}
        type_name = attributes.get("type") if isinstance(attributes, dict) else None
        if not type_name:
            raise SalesforceError("INVALID_TYPE", "Must specify a type in attributes.")
        return str(type_name)

    def _create_one(self, record: Any) -> dict[str, Any]:
        rec_id = self._dml.create(self._type_of(record), record)
        return {"id": rec_id, "success": True, "errors": []}

    def _update_one(self, record: Any) -> dict[str, Any]:
        type_name = self._type_of(record)
        fields = {k: v for k, v in record.items() if k.lower() != "id"}
        rec_id = record.get("id") or record.get("Id")
        if not rec_id:
            raise SalesforceError(
                "MISSING_ARGUMENT", "Id not specified in an update call", fields=["Id"]
            )
        self._dml.update(type_name, rec_id, fields)
        return {
            "id": self._store.find(rec_id)[1]["Id"],
            "success": True,  # type: ignore[index]
            "errors": [],
        }

    def _upsert_one(self, type_name: str, ext_field: str, record: Any) -> dict[str, Any]:
        if self._type_of(record).lower() != type_name.lower():
            raise SalesforceError("INVALID_TYPE", "All records must be of the URL's type.")
        value = None
        for key, val in record.items():
            if key.lower() == ext_field.lower():
                value = val
        if value in (None, ""):
            raise SalesforceError(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{ext_field}]",
                fields=[ext_field],
            )
        rec_id, created = self._dml.upsert(type_name, ext_field, str(value), record)
        return {"id": rec_id, "success": True, "errors": [], "created": created}

    def _delete_one(self, rec_id: str) -> dict[str, Any]:
        found = self._store.find(rec_id)
        if found is None:
            raise SalesforceError(
                "ENTITY_IS_DELETED"
                if self._store.find(rec_id, include_deleted=True)
                else "INVALID_CROSS_REFERENCE_KEY",
                "entity is deleted"
                if self._store.find(rec_id, include_deleted=True)
                else "invalid cross reference id",
            )
        self._dml.delete(found[0], found[1]["Id"])
        return {"id": found[1]["Id"], "success": True, "errors": []}

    def _retrieve(self, version: str, type_name: str, args: Mapping[str, str]) -> Result:
        sobject = self._schema.get(type_name)
        if sobject is None:
            raise not_found()
        raw = [i for i in (args.get("ids") or "").split(",") if i]
        fields = self._rest._field_list(sobject, args.get("fields"))
        out = []
        for rec_id in raw:
            found = self._store.find(rec_id)
            out.append(
                self._rest.serialize(version, sobject, found[1], fields)
                if found and found[0] == sobject.name
                else None
            )
        return Result(200, out)
