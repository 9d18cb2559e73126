"""The one module that talks HTTP to Salesforce: sObjects, SOQL, composite, graph, Connect actions.

Every Salesforce failure leaves this module as one of omsbridge's error classes (with the
Salesforce ``errorCode`` as ``code``, the HTTP ``status`` and ``backend="salesforce"``), so
nothing above it ever sees httpx or a Salesforce error array:

==================================================  =======================================
Salesforce says                                     raised
==================================================  =======================================
401 (after one re-authentication and replay)        AuthFailed
403 ``REQUEST_LIMIT_EXCEEDED``                      RateLimited (retry_after)
403 other (permissions, API disabled)               AuthFailed
``UNABLE_TO_LOCK_ROW``, ``SERVER_UNAVAILABLE``,     TransientBackendError
``QUERY_TIMEOUT``, 5xx, timeouts, network errors
``DUPLICATE_VALUE``, 300, 409                       Conflict
404, ``NOT_FOUND``, ``ENTITY_IS_DELETED``           NotFound
400 field errors (``REQUIRED_FIELD_MISSING``...)    InvalidTransaction (issues name the fields)
other 400                                           Rejected
==================================================  =======================================

``Sforce-Limit-Info`` is read from every response: :attr:`SalesforceClient.api_usage`.
"""

from __future__ import annotations

import json as _json
import logging
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import quote as url_quote

import attrs
import httpx

from omsbridge import (
    AuthFailed,
    BackendError,
    Conflict,
    InvalidTransaction,
    Issue,
    NotFound,
    RateLimited,
    Rejected,
    TransientBackendError,
)
from omsbridge.http_direct import DirectClient
from omsbridge_salesforce._tls import shared_tls
from omsbridge_salesforce.auth import BACKEND, SalesforceAuth
from omsbridge_salesforce.config import SalesforceConfig

__all__ = [
    "MAX_SUBREQUESTS",
    "GraphResult",
    "QueryPage",
    "SalesforceClient",
    "SubResult",
    "dumps",
    "error_from",
    "parse_limit_info",
]

log = logging.getLogger(__name__)

RATE_LIMIT_BACKOFF = 300.0
"""Seconds to wait after REQUEST_LIMIT_EXCEEDED when Salesforce gives no Retry-After (it never does)."""

_TRANSIENT = frozenset(
    {
        "UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "QUERY_TIMEOUT", "REQUEST_RUNNING_TOO_LONG",
        "TXN_SECURITY_METERING_ERROR", "OPERATION_TOO_LARGE_TRY_AGAIN",
    }
)  # fmt: skip
_RATE = frozenset({"REQUEST_LIMIT_EXCEEDED", "rate_limit_exceeded"})
_CONFLICT = frozenset({"DUPLICATE_VALUE", "DUPLICATES_DETECTED", "DUPLICATE_EXTERNAL_ID"})
_NOT_FOUND = frozenset({"NOT_FOUND", "ENTITY_IS_DELETED", "INVALID_ID_FIELD"})
_AUTH = frozenset(
    {
        "INVALID_SESSION_ID", "INVALID_AUTH_HEADER", "API_DISABLED_FOR_ORG",
        "API_CURRENTLY_DISABLED", "invalid_grant", "invalid_client", "invalid_client_id",
        "unsupported_grant_type", "inactive_user", "inactive_org",
    }
)  # fmt: skip
_FIELD = frozenset(
    {
        "REQUIRED_FIELD_MISSING", "STRING_TOO_LONG", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "FIELD_CUSTOM_VALIDATION_EXCEPTION", "FIELD_INTEGRITY_EXCEPTION", "INVALID_EMAIL_ADDRESS",
        "NUMBER_OUTSIDE_VALID_RANGE", "INVALID_TYPE_ON_FIELD_IN_RECORD",
    }
)  # fmt: skip
_HALTED = "PROCESSING_HALTED"


# -- error mapping ------------------------------------------------------------------------------


def _entries(body: Any) -> list[dict[str, Any]]:
    """The error objects of a Salesforce error body (REST array, Connect object, or token error)."""
    if isinstance(body, list):
        return [e for e in body if isinstance(e, dict)]
    if isinstance(body, dict):
        if "errorCode" in body or "message" in body:
            return [body]
        if isinstance(body.get("errors"), list):
            return [e for e in body["errors"] if isinstance(e, dict)]
        if "error" in body:
            return [{"errorCode": body["error"], "message": body.get("error_description", "")}]
    return []


def _code(entry: Mapping[str, Any]) -> str:
    return str(entry.get("errorCode") or entry.get("statusCode") or "UNKNOWN_ERROR")


def error_from(
    status: int,
    body: Any,
    *,
    context: str = "",
    headers: Mapping[str, str] | None = None,
    field_paths: Mapping[str, str] | None = None,
) -> BackendError:
    """The omsbridge error for a Salesforce error response (status + body).

    ``context`` prefixes the message (what was being done); ``field_paths`` maps a Salesforce
    field name to the transaction path it came from, for :class:`InvalidTransaction` issues.
    """
    entries = _entries(body) or [{"errorCode": f"HTTP_{status}", "message": _short(body)}]
    first = next((e for e in entries if _code(e) != _HALTED), entries[0])
    code = _code(first)
    text = str(first.get("message") or "").strip()
    message = f"{context}: {code}: {text}" if context else f"{code}: {text}"
    kwargs: dict[str, Any] = {"code": code, "status": status, "backend": BACKEND}
    if code in _RATE or status == 429:
        retry = (headers or {}).get("Retry-After")
        try:
            retry_after = float(retry) if retry else RATE_LIMIT_BACKOFF
        except ValueError:
            retry_after = RATE_LIMIT_BACKOFF
        return RateLimited(message, retry_after=retry_after, **kwargs)
    if code in _TRANSIENT or status >= 500:
        return TransientBackendError(message, **kwargs)
    if code in _AUTH or status in (401, 403):
        return AuthFailed(message, **kwargs)
    if code in _CONFLICT or status in (300, 409):
        return Conflict(message, **kwargs)
    if code in _NOT_FOUND or status in (404, 410):
        return NotFound(message, **kwargs)
    fields = [str(f) for f in first.get("fields") or [] if f]
    if code in _FIELD:
        paths = field_paths or {}
        issues = [Issue(paths.get(f, f), f"{code}: {text}") for f in fields] or [
            Issue(context, f"{code}: {text}")
        ]
        return InvalidTransaction(issues, **kwargs)
    return Rejected(message, **kwargs)


def _short(body: Any) -> str:
    text = body if isinstance(body, str) else repr(body)
    return text[:200]


def parse_limit_info(header: str | None) -> tuple[int, int] | None:
    """``api-usage=25/15000; per-app-api-usage=...`` -> ``(25, 15000)``; None when absent."""
    if not header:
        return None
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "api-usage":
            used, _, limit = value.partition("/")
            try:
                return int(used), int(limit)
            except ValueError:
                return None
    return None


# -- results ------------------------------------------------------------------------------------


@attrs.frozen
class QueryPage:
    """One batch of SOQL results; ``next_url`` continues the query (None when done)."""

    records: list[dict[str, Any]]
    total_size: int
    next_url: str | None


MAX_SUBREQUESTS = 25
"""Subrequests per ``/composite`` request Salesforce accepts (composite.md §2)."""


@attrs.frozen
class SubResult:
    """One composite or graph node result."""

    reference_id: str
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        """Whether the node succeeded."""
        return 200 <= self.status < 300

    @property
    def id(self) -> str | None:
        """The record id a create returned."""
        return self.body.get("id") if isinstance(self.body, dict) else None


@attrs.frozen
class GraphResult:
    """One graph of a composite-graph response; ``successful`` is the graph's all-or-none outcome."""

    graph_id: str
    successful: bool
    nodes: dict[str, SubResult]

    def failed_node(self) -> SubResult | None:
        """The node that really failed (not one halted because of it)."""
        failed = [n for n in self.nodes.values() if not n.ok]
        for node in failed:
            if not any(_code(e) == _HALTED for e in _entries(node.body)):
                return node
        return failed[0] if failed else None

    def error(self, *, context: str = "", sources: Mapping[str, str] | None = None) -> BackendError:
        """The omsbridge error for a failed graph; ``sources`` maps node ids to transaction paths."""
        node = self.failed_node()
        if node is None:
            return Rejected(
                f"{context}: the composite graph failed without a node error",
                code="GRAPH_FAILED",
                backend=BACKEND,
            )
        where = (sources or {}).get(node.reference_id)
        entries = _entries(node.body)
        fields = [str(f) for e in entries[:1] for f in e.get("fields") or []]
        paths = {f: f"{where}.{f}" if where else f"{node.reference_id}.{f}" for f in fields}
        label = f"{context} (node {node.reference_id}{', ' + where if where else ''})"
        return error_from(node.status, node.body, context=label, field_paths=paths)


# -- the client ---------------------------------------------------------------------------------


class SalesforceClient:
    """A thread-safe Salesforce REST client for one org (one merchant).

    ``transport`` replaces the network (tests: :class:`httpx.MockTransport`); it is also used
    for token requests unless ``auth`` is given.
    """

    def __init__(
        self,
        config: SalesforceConfig,
        *,
        auth: SalesforceAuth | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self.auth = auth or SalesforceAuth(config, transport=transport)
        # Sends through httpx without Client.send's per-request work (omsbridge.http_direct).
        self._direct = DirectClient(
            auth=self.auth,
            transport=transport,
            verify=shared_tls(),
            timeout=httpx.Timeout(config.read_timeout, connect=config.connect_timeout),
            headers={"Accept": "application/json", "Content-Type": "application/json"},
        )
        self._http = self._direct.client
        self._usage_lock = threading.Lock()
        self._api_usage: tuple[int, int] | None = None
        self.requests_sent = 0
        """Requests sent through this client (excluding token requests)."""

    def __repr__(self) -> str:
        return f"SalesforceClient({self.config.url_base!r}, {self.config.api_version})"

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """(used, max) daily API requests from the last ``Sforce-Limit-Info`` header."""
        return self._api_usage

    def close(self) -> None:
        """Close connections (the API client and the token endpoint's)."""
        self._http.close()
        self.auth.close()

    # -- paths ----------------------------------------------------------------------------------

    def data_path(self, suffix: str, *, query: bool = False) -> str:
        """``/services/data/vXX.X`` + suffix (the query API version for /query)."""
        version = self.config.effective_query_api_version if query else self.config.api_version
        return f"/services/data/{version}{suffix}"

    def sobject_path(self, sobject: str, record_id: str | None = None) -> str:
        """The sObject resource path (the same string graph nodes use as ``url``)."""
        base = self.data_path(f"/sobjects/{sobject}")
        return f"{base}/{url_quote(record_id, safe='@{}.')}" if record_id else base

    # -- core request ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        context: str | None = None,
    ) -> Any:
        """Send one request to the instance; return the decoded JSON (None for 204) or raise."""
        url = self.auth.instance_url + path
        what = context or f"{method} {path}"
        content = None if json is None else dumps(json)
        try:
            response = self._send(method, url, content, params)
        except httpx.TimeoutException:
            raise TransientBackendError(
                f"{what}: timed out; the outcome is unknown", code="TIMEOUT", backend=BACKEND
            ) from None
        except httpx.TransportError as exc:
            raise TransientBackendError(
                f"{what}: cannot reach Salesforce ({type(exc).__name__})",
                code="CONNECTION",
                backend=BACKEND,
            ) from None
        self.requests_sent += 1
        usage = parse_limit_info(response.headers.get("Sforce-Limit-Info"))
        if usage is not None:
            with self._usage_lock:
                self._api_usage = usage
        body = _decode(response)
        if response.status_code >= 300:
            raise error_from(response.status_code, body, context=what, headers=response.headers)
        return body

    def _send(
        self, method: str, url: str, content: bytes | None, params: Mapping[str, str] | None
    ) -> httpx.Response:
        """Send one request through httpx and read its answer (the HTTP client's part)."""
        return self._direct.request(method, url, content=content, params=params)

    # -- sObjects -------------------------------------------------------------------------------

    def create(self, sobject: str, fields: Mapping[str, Any]) -> str:
        """Insert one record; return its id."""
        body = self.request(
            "POST", self.sobject_path(sobject), json=dict(fields), context=f"create {sobject}"
        )
        return str(body["id"])

    def update(self, sobject: str, record_id: str, fields: Mapping[str, Any]) -> None:
        """Change fields of one record."""
        self.request(
            "PATCH",
            self.sobject_path(sobject, record_id),
            json=dict(fields),
            context=f"update {sobject} {record_id}",
        )

    def get(self, sobject: str, record_id: str, fields: Sequence[str] = ()) -> dict[str, Any]:
        """Read one record (only ``fields`` when given)."""
        params = {"fields": ",".join(fields)} if fields else None
        body = self.request(
            "GET",
            self.sobject_path(sobject, record_id),
            params=params,
            context=f"read {sobject} {record_id}",
        )
        return dict(body)

    # -- SOQL -----------------------------------------------------------------------------------

    def query_page(self, soql: str | None = None, *, next_url: str | None = None) -> QueryPage:
        """One batch of a query, or the batch at ``next_url``."""
        if next_url is not None:
            body = self.request("GET", next_url, context="query (next page)")
        elif soql is not None:
            body = self.request(
                "GET", self.data_path("/query", query=True), params={"q": soql}, context="query"
            )
        else:
            raise ValueError("give soql or next_url")
        return _page(body)

    def query(self, soql: str) -> list[dict[str, Any]]:
        """Every record a query matches, following ``nextRecordsUrl``."""
        return list(self.iter_query(soql))

    def iter_query(self, soql: str) -> Iterator[dict[str, Any]]:
        """Records of a query, fetching further batches as they are needed."""
        page = self.query_page(soql)
        yield from page.records
        while page.next_url:
            page = self.query_page(next_url=page.next_url)
            yield from page.records

    def queries(
        self, named: Mapping[str, str], *, referring: Sequence[str] = ()
    ) -> dict[str, list[dict[str, Any]]]:
        """Run several queries in ONE API call (composite); first batch of each, by name.

        The queries named in ``referring`` may use an earlier one's answer, as composite
        references (``'@{summary.records[0].Id}'``), which are sent unescaped; their SOQL must
        hold no outside text. When the referred-to query found nothing, the referring one
        comes back empty (Salesforce does not run it)."""
        if not named:
            return {}
        if len(named) == 1 and not referring:
            ((name, soql),) = named.items()
            return {name: self.query(soql)}
        subrequests = [
            {
                "method": "GET",
                "url": self.data_path("/query", query=True)
                + "?q="
                + (_quote_keeping_refs(soql) if name in referring else url_quote(soql, safe="")),
                "referenceId": name,
            }
            for name, soql in named.items()
        ]
        results = self.composite(subrequests, all_or_none=False)
        out: dict[str, list[dict[str, Any]]] = {}
        for name in named:
            sub = results[name]
            if not sub.ok and name in referring and _unresolved_reference(sub.body):
                out[name] = []
                continue
            if not sub.ok:
                raise error_from(sub.status, sub.body, context=f"query {name}")
            page = _page(sub.body)
            records = list(page.records)
            if page.next_url:
                for more in self._more(page.next_url):
                    records.extend(more)
            out[name] = records
        return out

    def _more(self, next_url: str) -> Iterator[list[dict[str, Any]]]:
        url: str | None = next_url
        while url:
            page = self.query_page(next_url=url)
            yield page.records
            url = page.next_url

    # -- composite ------------------------------------------------------------------------------

    def composite(
        self,
        subrequests: Sequence[Mapping[str, Any]],
        *,
        all_or_none: bool = False,
        in_order: bool = False,
        context: str = "composite",
    ) -> dict[str, SubResult]:
        """POST /composite (up to 25 subrequests, one API call); results by referenceId.

        ``in_order`` sends ``collateSubrequests: false``: Salesforce then runs the subrequests
        in the order given (its default collates unrelated ones, in no guaranteed order)."""
        if len(subrequests) > MAX_SUBREQUESTS:
            raise ValueError("a composite request holds at most 25 subrequests")
        payload: dict[str, Any] = {"allOrNone": all_or_none}
        if in_order:
            payload["collateSubrequests"] = False
        payload["compositeRequest"] = list(subrequests)
        body = self.request("POST", self.data_path("/composite"), json=payload, context=context)
        return {
            str(r.get("referenceId")): SubResult(
                str(r.get("referenceId")), int(r.get("httpStatusCode", 0)), r.get("body")
            )
            for r in (body or {}).get("compositeResponse", [])
        }

    def graph(
        self, graphs: Sequence[Mapping[str, Any]], *, context: str = "composite graph"
    ) -> list[GraphResult]:
        """POST /composite/graph; one :class:`GraphResult` per graph (HTTP 200 even when they fail)."""
        body = self.request(
            "POST",
            self.data_path("/composite/graph"),
            json={"graphs": list(graphs)},
            context=context,
        )
        results = []
        for g in (body or {}).get("graphs", []):
            nodes = {
                str(r.get("referenceId")): SubResult(
                    str(r.get("referenceId")), int(r.get("httpStatusCode", 0)), r.get("body")
                )
                for r in (g.get("graphResponse") or {}).get("compositeResponse", [])
            }
            results.append(GraphResult(str(g.get("graphId")), bool(g.get("isSuccessful")), nodes))
        return results

    def graph_after_query(
        self,
        graph_id: str,
        nodes: Sequence[Mapping[str, Any]],
        *,
        query_ref: str,
        soql: str,
        context: str,
    ) -> tuple[GraphResult, list[dict[str, Any]]]:
        """One graph's nodes sent as ONE ``/composite`` request after a query they refer to
        (``@{query_ref.records[0].Id}``): ``allOrNone`` (the query's answer and every node
        commit or roll back together, as a graph does) and in order (``collateSubrequests:
        false``). At most 24 nodes. Returns the nodes' results as a :class:`GraphResult` (the
        query's among them) and the query's first page of records (empty when it failed)."""
        result, rows = self.graph_as_composite(
            graph_id, nodes, before={query_ref: soql}, context=context
        )
        return result, rows[query_ref]

    def graph_as_composite(
        self,
        graph_id: str,
        nodes: Sequence[Mapping[str, Any]],
        *,
        before: Mapping[str, str] | None = None,
        after: Mapping[str, str] | None = None,
        context: str,
    ) -> tuple[GraphResult, dict[str, list[dict[str, Any]]]]:
        """One graph's nodes sent as ONE ``/composite`` request (``allOrNone``, in order), with
        queries (reference id -> SOQL) run ``before`` them (the nodes may refer to their
        answers) and ``after`` them (they see what the nodes wrote). At most 25 subrequests in
        all. Returns the results as a :class:`GraphResult` and each query's first page of
        records (empty when it failed)."""
        queries = {**(before or {}), **(after or {})}

        def query(ref: str) -> dict[str, Any]:
            soql = queries[ref]
            url = self.data_path("/query", query=True) + "?q=" + url_quote(soql, safe="")
            return {"method": "GET", "url": url, "referenceId": ref}

        subrequests = [query(r) for r in before or {}]
        subrequests += [*nodes, *(query(r) for r in after or {})]
        results = self.composite(subrequests, all_or_none=True, in_order=True, context=context)
        rows: dict[str, list[dict[str, Any]]] = {}
        for ref in queries:
            found = results.get(ref)
            rows[ref] = (
                list(found.body.get("records") or [])
                if found is not None and found.ok and isinstance(found.body, dict)
                else []
            )
        successful = bool(results) and all(r.ok for r in results.values())
        return GraphResult(graph_id, successful, results), rows

    # -- Connect (Order Management actions) -----------------------------------------------------

    def connect(
        self, suffix: str, body: Mapping[str, Any], *, context: str | None = None
    ) -> dict[str, Any]:
        """POST a Connect action (``/commerce/...``); a 2xx reporting ``success: false`` raises Rejected."""
        what = context or suffix
        result = self.request("POST", self.data_path(suffix), json=dict(body), context=what)
        result = result if isinstance(result, dict) else {}
        errors = _entries({"errors": result.get("errors")}) if result.get("errors") else []
        if result.get("success") is False or errors:
            raise error_from(400, errors or result, context=what)
        return result

    def limits(self) -> dict[str, Any]:
        """GET /limits (DailyApiRequests and friends)."""
        return dict(self.request("GET", self.data_path("/limits"), context="limits"))


def _number(value: Decimal) -> float | int:
    # Salesforce wants JSON numbers. Amounts are computed in Decimal; a float's shortest repr
    # round-trips every value with up to 15 significant digits, which covers all money here.
    if value == value.to_integral_value() and abs(value) < 2**53:
        return int(value)
    return float(value)


# Decimal -> JSON number, by value: a sale sends ~30 amounts, mostly the same few prices,
# and a lookup costs a fifth of _number. The number depends only on the value (equal
# Decimals such as 2.5 and 2.50 give the same number), so equal keys are safe.
_NUMBERS: dict[Decimal, float | int] = {}
_MAX_NUMBERS = 4096


def _json_default(value: Any) -> Any:
    try:
        return _NUMBERS[value]
    except (KeyError, TypeError):  # TypeError: unhashable (not a Decimal) or a signaling NaN
        pass
    if isinstance(value, Decimal):
        number = _number(value)
        if value.is_finite():
            if len(_NUMBERS) >= _MAX_NUMBERS:
                _NUMBERS.clear()
            _NUMBERS[value] = number
        return number
    raise TypeError(f"cannot send a {type(value).__name__} to Salesforce")


# One encoder for every request body (json.dumps would build a new one per call).
_ENCODER = _json.JSONEncoder(default=_json_default, separators=(",", ":"))


def dumps(body: Any) -> bytes:
    """JSON for a request body; Decimal amounts become JSON numbers."""
    return _ENCODER.encode(body).encode()


def _decode(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        # Numbers as Decimal: amounts read back from Salesforce are never floats.
        return _json.loads(response.content, parse_float=Decimal)
    except ValueError:
        return response.text


def _page(body: Any) -> QueryPage:
    if not isinstance(body, dict) or "records" not in body:
        raise Rejected(
            f"query: unexpected response {_short(body)}", code="BAD_RESPONSE", backend=BACKEND
        )
    return QueryPage(
        records=list(body["records"]),
        total_size=int(body.get("totalSize", len(body["records"]))),
        next_url=body.get("nextRecordsUrl") if not body.get("done", True) else None,
    )


_REFERENCE = re.compile(r"@\{[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+|\[\d+\])*\}")


def _quote_keeping_refs(soql_text: str) -> str:
    """URL-quote SOQL but leave composite references (``@{ref.records[0].Id}``) as they are,
    so that Salesforce substitutes them."""
    out, last = [], 0
    for match in _REFERENCE.finditer(soql_text):
        out.append(url_quote(soql_text[last : match.start()], safe=""))
        out.append(match.group(0))
        last = match.end()
    out.append(url_quote(soql_text[last:], safe=""))
    return "".join(out)


def _unresolved_reference(body: Any) -> bool:
    """A composite subrequest not run because what it refers to is absent (an empty answer)."""
    errors = body if isinstance(body, list) else [body]
    return any(
        isinstance(e, Mapping)
        and e.get("errorCode") == "PROCESSING_HALTED"
        and "Invalid reference specified" in str(e.get("message", ""))
        for e in errors
    )
