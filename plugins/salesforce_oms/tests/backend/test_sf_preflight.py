"""``omsbridge salesforce preflight``: an org checked against a merchant's settings, read only.

The orgs are the sandbox's org profiles (``som``, ``som-minimal``, ``som-unprepared``) with the
settings the sandbox says suit them (``merchant_settings`` in its info). A test that needs an org
the profiles do not offer changes one describe answer through :class:`_ProfileOverlay`.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import click
import httpx
import pytest
from click.testing import CliRunner
from sf_backend_helpers import config
from werkzeug.serving import WSGIRequestHandler, make_server

from omsbridge import MerchantContext, OrderBackend, hookimpl
from omsbridge.cli.exit_codes import ExitCode
from omsbridge_salesforce.cli import salesforce
from omsbridge_salesforce.client import SalesforceClient
from omsbridge_salesforce.config import CustomField
from omsbridge_salesforce.preflight import Check, preflight, problems
from omsbridge_salesforce_sandbox import SalesforceSandbox

MERCHANT = MerchantContext("DEMO", "en_US", "US", "USD")

# Every field the setup package deploys, as the settings name them.
PACKAGE_FIELDS = [
    "Order.POS_Transaction_Id__c",
    "OrderItem.POS_Line_Id__c",
    "OrderItemSummary.POS_Line_Id__c",
    "Order.POS_Customer_Id__c",
    "FulfillmentOrderLineItem.POS_Quantity_Received__c",
    "Location.POS_Store_Id__c",
    "Order.POS_Placed_At__c",
    "Order.POS_Store_Id__c",
]


class _ProfileOverlay:
    """A sandbox org whose describe answers a test may change (a WSGI app):
    ``edit(sobject, describe)`` changes them for one test. Records, queries and everything else
    are the sandbox's own.
    """

    _DESCRIBE = re.compile(r"^/services/data/v[\d.]+/sobjects/([A-Za-z0-9_]+)/describe/?$")

    def __init__(
        self,
        sandbox: SalesforceSandbox,
        profile: str,
        edit: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.profile = profile
        self.edit = edit

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        match = self._DESCRIBE.match(environ.get("PATH_INFO", ""))
        if match is None or environ["REQUEST_METHOD"] != "GET" or self.edit is None:
            return self.sandbox(environ, start_response)
        sobject = match.group(1)
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        raw = b"".join(self.sandbox(environ, capture))
        status = captured["status"]
        if status.startswith("200"):
            body = json.loads(raw)
        else:
            start_response(status, captured["headers"])
            return [raw]
        self.edit(sobject, body)
        out = json.dumps(body).encode()
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(status, [*headers, ("Content-Length", str(len(out)))])
        return [out]


def org(profile: str, edit: Callable[[str, dict[str, Any]], None] | None = None) -> _ProfileOverlay:
    """A demo-seeded sandbox org of ``profile`` (a WSGI app; ``.sandbox``)."""
    sandbox = SalesforceSandbox(seed="demo", org_profile=profile)
    _OPENED.append(sandbox)
    return _ProfileOverlay(sandbox, profile, edit)


_OPENED: list[SalesforceSandbox] = []


@pytest.fixture(autouse=True)
def _close_orgs() -> Iterator[None]:
    """Close the sandbox orgs a test made, and fail on a sandbox bug (HTTP 500)."""
    yield
    while _OPENED:
        sandbox = _OPENED.pop()
        sandbox.close()
        assert not sandbox.internal_errors, sandbox.internal_errors[0]


# Connection settings of the sandbox's merchant_settings; the tests give their own.
_CONNECTION = frozenset(
    {
        "url_base", "allow_insecure_sandbox_url", "auth_flow", "client_id", "client_secret",
        "username", "password", "security_token", "private_key", "audience", "token_url",
        "api_version", "query_api_version",
    }
)  # fmt: skip


@functools.cache
def _sandbox_settings(profile: str) -> dict[str, Any]:
    """The settings the sandbox says suit ``profile`` (its info's ``merchant_settings``)."""
    sandbox = SalesforceSandbox(seed="empty", org_profile=profile)
    try:
        offered = sandbox.info().get("merchant_settings") or {}
    finally:
        sandbox.close()
    return {k: v for k, v in offered.items() if k not in _CONNECTION}


def settings(profile: str, **overrides: Any) -> dict[str, Any]:
    """Settings suited to ``profile``: the sandbox's own, the demo org's gateways, overrides."""
    values: dict[str, Any] = {
        "payment_gateway_name": "DemoGateway",
        "cash_payment_gateway_name": "CashPOS",
    }
    values.update(_sandbox_settings(profile))
    values.update(overrides)
    return values


def run_checks(app: Any, **overrides: Any) -> list[Check]:
    """Preflight in-process (no socket) with settings suited to the app's profile."""
    values = settings(app.profile, **overrides)
    values["custom_fields"] = [CustomField(**c) for c in values["custom_fields"]]
    cfg = config("http://127.0.0.1:9", **values)
    client = SalesforceClient(cfg, transport=httpx.WSGITransport(app=app))
    try:
        return preflight(client, cfg, MERCHANT)
    finally:
        client.close()


def failed(checks: list[Check]) -> dict[str, Check]:
    return {c.check: c for c in problems(checks)}


# -- serving an org for the command -------------------------------------------------------------


class _Quiet(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:
        """No access log in test output."""


@contextmanager
def served(app: Any) -> Iterator[str]:
    """Serve a WSGI app on a free loopback port; yields its URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def write_config(tmp_path: Path, url: str, values: dict[str, Any]) -> Path:
    lines = [
        "[merchants.DEMO]",
        'backend = "salesforce"',
        'locale = "en_US"',
        'region = "US"',
        "",
        "[merchants.DEMO.salesforce]",
        f'url_base = "{url}"',
        "allow_insecure_sandbox_url = true",
        'username = "integration@omsbridge.sandbox"',
        'password = { env = "SF_PASSWORD" }',
        'client_id = "3MVG9omsbridgeSandboxConsumerKey"',
        'client_secret = { env = "SF_SECRET" }',
        "read_timeout = 10.0",
        "connect_timeout = 2.0",
    ]
    lines += [f"{key} = {_toml(value)}" for key, value in values.items()]
    path = tmp_path / "omsbridge.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def command(monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str]]:
    """Run ``omsbridge salesforce preflight --config FILE --merchant DEMO [args]``."""
    monkeypatch.setenv("SF_PASSWORD", "sandbox-password")
    monkeypatch.setenv("SF_SECRET", "sandbox-consumer-secret")
    root = click.Group("omsbridge")
    root.add_command(salesforce)

    def run(path: Path, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(
            root, ["salesforce", "preflight", "--config", str(path), "--merchant", "DEMO", *args]
        )
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.output

    return run


# -- the command ------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["som", "som-minimal"])
def test_ready_org_exits_0(profile: str, command: Any, tmp_path: Path) -> None:
    with served(org(profile)) as url:
        code, out = command(write_config(tmp_path, url, settings(profile)))
    assert code == 0, out
    assert "is ready for merchant DEMO" in out and "FAIL" not in out


def test_unprepared_org_exits_1_naming_each_missing_field(command: Any, tmp_path: Path) -> None:
    with served(org("som-unprepared")) as url:
        code, out = command(write_config(tmp_path, url, settings("som-unprepared")))
    assert code == 1, out
    failures = [line for line in out.splitlines() if line.startswith("FAIL")]
    for field in PACKAGE_FIELDS:
        assert any(field in line for line in failures), (field, out)
    assert len(failures) == len(PACKAGE_FIELDS), out  # nothing else is wrong with that org
    deploy = "cd plugins/salesforce_oms/org-setup && sf project deploy start --source-dir force-app"
    n = len(PACKAGE_FIELDS)
    assert out.count(deploy) == n and out.count("--name omsbridge_Integration") == n
    assert f"NOT ready for merchant DEMO: {n} problem(s)" in out


def test_json_shape(command: Any, tmp_path: Path) -> None:
    with served(org("som-unprepared")) as url:
        code, out = command(write_config(tmp_path, url, settings("som-unprepared")), "--json")
        assert code == 1
        body = json.loads(out)
        assert set(body) == {"ready", "checks"} and body["ready"] is False
        assert all(set(c) == {"check", "ok", "problem", "fix"} for c in body["checks"])
        bad = [c for c in body["checks"] if not c["ok"]]
        assert len(bad) == len(PACKAGE_FIELDS) and all(c["problem"] and c["fix"] for c in bad)
        assert all(c["problem"] is None and c["fix"] is None for c in body["checks"] if c["ok"])
    with served(org("som")) as url:
        code, out = command(write_config(tmp_path, url, settings("som")), "--json")
    assert code == 0 and json.loads(out)["ready"] is True


def test_refused_credentials_exit_1_network_failure_exits_2(command: Any, tmp_path: Path) -> None:
    with served(org("som")) as url:
        path = write_config(tmp_path, url, settings("som"))
        path.write_text(path.read_text().replace("SF_PASSWORD", "SF_WRONG"))
        import os

        os.environ["SF_WRONG"] = "not-the-password"
        try:
            code, out = command(path, "--json")
        finally:
            del os.environ["SF_WRONG"]
    assert code == 1 and json.loads(out)["error"] == "AuthFailed", out
    with served(org("som")) as url:
        pass  # the port is closed now: nothing listens there
    code, out = command(write_config(tmp_path, url, settings("som")), "--json")
    error = json.loads(out)
    assert code == ExitCode.RETRY and error["error"] == "TransientBackendError", out
    assert error["retryable"], out


# -- what is checked --------------------------------------------------------------------------


def test_wrong_picklist_values_are_named() -> None:
    checks = run_checks(
        org("som-minimal"),
        fulfillment_statuses={
            **settings("som-minimal")["fulfillment_statuses"],
            "READY_FOR_PICKUP": "Ready for pickup",
            "PICKED_UP": "fulfilled",
        },
        statuses_to_process=["Allocated", "Waiting Pickpack"],
        status_canceled_value="Canceled",
    )
    bad = failed(checks)
    assert set(bad) == {
        "fulfillment_statuses.READY_FOR_PICKUP: FulfillmentOrder.Status = 'Ready for pickup'",
        "fulfillment_statuses.PICKED_UP: FulfillmentOrder.Status = 'fulfilled'",
        "statuses_to_process[1]: FulfillmentOrder.Status = 'Waiting Pickpack'",
        "status_canceled_value: FulfillmentOrder.Status = 'Canceled'",
        "status_canceled_value: OrderSummary.Status = 'Canceled'",
    }, bad
    hint = bad["fulfillment_statuses.PICKED_UP: FulfillmentOrder.Status = 'fulfilled'"]
    assert "it has 'Fulfilled'" in (hint.problem or "")
    assert "Status Category" in (hint.fix or "")
    ok = {c.check for c in checks if c.ok}
    assert "statuses_to_process[0]: FulfillmentOrder.Status = 'Allocated'" in ok


@pytest.mark.parametrize(
    ("profile", "wrong"),
    [("som", ["BROKEN"]), ("som-minimal", ["DAMAGED", "BROKEN"])],
)
def test_change_reasons_are_checked(profile: str, wrong: list[str]) -> None:
    checks = run_checks(
        org(profile),
        change_reasons={"DAMAGED": "Damaged", "BROKEN": "Broken"},
        default_change_reason="Unknown",
    )
    reason = "OrderItemSummaryChange.Reason"
    expected = {
        "DAMAGED": f"change_reasons.DAMAGED: {reason} = 'Damaged'",
        "BROKEN": f"change_reasons.BROKEN: {reason} = 'Broken'",
    }
    bad = failed(checks)
    assert list(bad) == [expected[key] for key in wrong]  # nothing else fails
    assert "'Unknown'" in (bad[expected["BROKEN"]].problem or "")  # the org's values are listed
    ok = {c.check for c in checks if c.ok}
    assert f"default_change_reason: {reason} = 'Unknown'" in ok


_SALE_STEPS = {"order_summary_creation": "connect", "take_with_fulfillment": "connector"}
_TAKE_WITH = 'take_with_fulfillment = "connector"'


def test_sale_steps_ready() -> None:
    checks = {c.check: c for c in run_checks(org("som-minimal"), **_SALE_STEPS)}
    for name in (
        'order_summary_creation = "connect": api_version v62.0',
        f"{_TAKE_WITH}: FulfillmentOrder.Status = 'Fulfilled'",
        f"{_TAKE_WITH}: FulfillmentOrder.Type = 'Retail Store'",
        "custom_fields ORDER_STORE_ID: Location.POS_Store_Id__c values",
    ):
        assert checks[name].ok, name
    assert not problems(checks.values())


def test_sale_steps_problems_are_named() -> None:
    bad = failed(run_checks(org("som-minimal"), **_SALE_STEPS, api_version="v55.0"))
    assert list(bad) == ['order_summary_creation = "connect": api_version v55.0']
    bad = failed(run_checks(org("som-minimal"), **_SALE_STEPS, custom_fields=[]))
    assert list(bad) == [f"{_TAKE_WITH}: custom_fields ORDER_STORE_ID"]
    assert 'take_with_fulfillment = "flow"' in (
        bad[f"{_TAKE_WITH}: custom_fields ORDER_STORE_ID"].fix or ""
    )

    def no_fulfilled(sobject: str, body: dict[str, Any]) -> None:
        for field in body["fields"]:
            if sobject == "FulfillmentOrder" and field["name"] == "Status":
                field["picklistValues"] = [
                    v for v in field["picklistValues"] if v["value"] != "Fulfilled"
                ]

    bad = failed(
        run_checks(
            org("som-minimal", no_fulfilled),
            **_SALE_STEPS,
            fulfillment_statuses={
                **settings("som-minimal")["fulfillment_statuses"],
                "PICKED_UP": "Pick Complete",
                "SHIPPED": "Pick Complete",
            },
        )
    )
    assert list(bad) == [f"{_TAKE_WITH}: FulfillmentOrder.Status = 'Fulfilled'"]
    app = org("som-minimal")
    for location in app.sandbox.store.all("Location"):
        app.sandbox.store.update("Location", location["Id"], {"POS_Store_Id__c": None})
    bad = failed(run_checks(app, **_SALE_STEPS))
    assert list(bad) == ["custom_fields ORDER_STORE_ID: Location.POS_Store_Id__c values"]
    # The org's own flow fulfils take-with lines: none of that is needed.
    assert not failed(
        run_checks(
            app, order_summary_creation="flow", take_with_fulfillment="flow", custom_fields=[]
        )
    )


def test_multicurrency_mismatch_is_named() -> None:
    bad = failed(run_checks(org("som"), multi_currency=False))
    assert list(bad) == ["multi_currency = false: Order.CurrencyIsoCode"]
    assert bad["multi_currency = false: Order.CurrencyIsoCode"].fix == "set multi_currency = true"
    bad = failed(run_checks(org("som-minimal"), multi_currency=True))
    assert list(bad) == ["multi_currency = true: Order.CurrencyIsoCode"]
    assert "INVALID_FIELD" in (bad["multi_currency = true: Order.CurrencyIsoCode"].problem or "")


def test_transaction_id_field_flags() -> None:
    def plain_text(sobject: str, body: dict[str, Any]) -> None:
        for field in body["fields"]:
            if sobject == "Order" and field["name"] == "POS_Transaction_Id__c":
                field.update(externalId=False, unique=False, caseSensitive=False, createable=False)

    check = "order_external_id_field: Order.POS_Transaction_Id__c"
    bad = failed(run_checks(org("som", plain_text)))
    assert list(bad) == [check]
    problem = bad[check].problem or ""
    for words in ("not an External ID", "not Unique", "not case-sensitive", "cannot write it"):
        assert words in problem, problem
    assert "check_before_post = true" in (bad[check].fix or "")
    # With check_before_post the connector looks before it posts: unique is not needed.
    problem = failed(run_checks(org("som", plain_text), check_before_post=True))[check].problem
    assert problem is not None and "Unique" not in problem and "External ID" in problem


def test_wrong_field_types_are_named() -> None:
    def retype(sobject: str, body: dict[str, Any]) -> None:
        for field in body["fields"]:
            if field["name"] in ("POS_Quantity_Received__c", "POS_Line_Id__c"):
                field["type"] = "string" if sobject == "FulfillmentOrderLineItem" else "double"

    bad = failed(run_checks(org("som", retype)))
    assert set(bad) == {
        "received_quantity_field: FulfillmentOrderLineItem.POS_Quantity_Received__c",
        "order_item_external_id_field: OrderItem.POS_Line_Id__c",
        "order_item_external_id_field: OrderItemSummary.POS_Line_Id__c",
    }
    assert "its type is string, not double or int or long" in (
        bad["received_quantity_field: FulfillmentOrderLineItem.POS_Quantity_Received__c"].problem
        or ""
    )


def test_order_management_and_person_accounts() -> None:
    def no_som_no_person_accounts(sobject: str, body: dict[str, Any]) -> None:
        if sobject == "Account":
            body["fields"] = [
                f for f in body["fields"] if f["name"] not in ("IsPersonAccount", "PersonEmail")
            ]

    app = org("som", no_som_no_person_accounts)

    def without_som(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if re.search(r"/sobjects/(OrderSummary|OrderItemSummary|FulfillmentOrder\w*|"
                     r"OrderItemSummaryChange)/describe", path):  # fmt: skip
            body = b'[{"errorCode":"NOT_FOUND","message":"The requested resource does not exist"}]'
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [body]
        return app(environ, start_response)

    without_som.profile = "som"  # type: ignore[attr-defined]
    bad = failed(run_checks(without_som))
    assert set(bad) == {
        "Order Management: OrderSummary",
        "person_accounts = true: Account.IsPersonAccount",
    }
    assert "Order Management" in (bad["Order Management: OrderSummary"].fix or "")
    assert "person_accounts = false" in (
        bad["person_accounts = true: Account.IsPersonAccount"].fix or ""
    )
    # An org without Person Accounts is fine for a merchant configured without them.
    without = failed(run_checks(without_som, person_accounts=False))
    assert set(without) == {"Order Management: OrderSummary"}


def test_gateways_delivery_methods_sales_channel() -> None:
    bad = failed(run_checks(org("som"), payment_gateway_name="NoSuchGateway"))
    assert list(bad) == ["payment_gateway_name: PaymentGateway 'NoSuchGateway'"]
    # Missing delivery methods and sales channel are fine while the user can create them ...
    checks = run_checks(
        org("som"),
        delivery_methods={"ONLINE-DEFAULT": "Brand New Method"},
        sales_channel_lookup_name="Nope",
        sales_channel_name="Also-Nope",
    )
    assert not problems(checks)
    assert "delivery_methods.ONLINE-DEFAULT: OrderDeliveryMethod 'Brand New Method'" in {
        c.check for c in checks
    }

    # ... and problems when it cannot.
    def read_only(sobject: str, body: dict[str, Any]) -> None:
        if sobject in ("OrderDeliveryMethod", "SalesChannel"):
            body["createable"] = False

    bad = failed(
        run_checks(
            org("som", read_only),
            delivery_methods={"ONLINE-DEFAULT": "Brand New Method"},
            sales_channel_lookup_name="Nope",
            sales_channel_name="Also-Nope",
        )
    )
    ship_to_store = (
        "delivery_methods.SHIP_TO_STORE-DEFAULT: OrderDeliveryMethod 'SHIP_TO_STORE-DEFAULT'"
    )
    assert set(bad) == {
        "delivery_methods.ONLINE-DEFAULT: OrderDeliveryMethod 'Brand New Method'",
        ship_to_store,  # the demo org has no such method either
        "sales_channel_lookup_name, sales_channel_name: SalesChannel 'Also-Nope' or 'Nope'",
    }
    assert "cannot create one (OrderDeliveryMethod not createable)" in (
        bad[ship_to_store].problem or ""
    )
    # The delivery methods the demo org has still pass: nothing needs creating for them.
    assert list(failed(run_checks(org("som", read_only)))) == [ship_to_store]


def test_api_version_and_filter_query() -> None:
    bad = failed(run_checks(org("som"), api_version="v99.0"))
    assert list(bad) == ["api_version: v99.0", "org"]
    assert "newest: v66.0" in (bad["api_version: v99.0"].problem or "")
    bad = failed(run_checks(org("som"), filter_query="NoSuchField__c = 'x'"))
    assert list(bad) == ["filter_query: FulfillmentOrder"]
    assert not failed(run_checks(org("som"), filter_query="Status = 'Allocated'"))


class _Recorder:
    """WSGI middleware that records every request (method, path, body)."""

    def __init__(self, app: Any) -> None:
        self.app, self.profile, self.requests = app, app.profile, []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size) if size else b""
        environ["wsgi.input"] = io.BytesIO(body)
        self.requests.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], body))
        return self.app(environ, start_response)


def _records(sandbox: SalesforceSandbox) -> dict[str, list[dict[str, Any]]]:
    return {
        t.name: copy.deepcopy(sandbox.store.all(t.name, include_deleted=True))
        for t in sandbox.schema.types()
    }


@pytest.mark.parametrize("profile", ["som", "som-unprepared"])
def test_reads_only(profile: str) -> None:
    app = org(profile)
    sandbox = app.sandbox
    before = _records(sandbox)
    assert sum(len(rows) for rows in before.values()) > 50  # the demo org: something to change
    recorder = _Recorder(app)
    checks = run_checks(recorder, filter_query="Status = 'Allocated'")
    assert len(checks) > 30
    assert _records(sandbox) == before  # no record created, changed or deleted
    writes = [(m, p) for m, p, _ in recorder.requests if m != "GET"]
    assert writes == [("POST", "/services/oauth2/token")]  # signing in is the only POST
    assert len(recorder.requests) < 30


@attrs.frozen
class _ElsewhereSettings:
    url: str = "http://127.0.0.1"


class _ElsewhereBackend(OrderBackend):
    """A backend that is not Salesforce."""

    name = "elsewhere"
    config_class = _ElsewhereSettings


class _ElsewherePlugin:
    @hookimpl
    def omsbridge_register_backends(self, register: Callable[[type[OrderBackend]], None]) -> None:
        register(_ElsewhereBackend)


def test_merchant_on_another_backend_is_refused(
    command: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from omsbridge import plugins

    pm = plugins.new_plugin_manager()
    plugins.load_entry_point_plugins(pm)
    pm.register(_ElsewherePlugin(), name="elsewhere")
    monkeypatch.setattr(plugins, "_default", pm)
    path = tmp_path / "omsbridge.toml"
    path.write_text('[merchants.DEMO]\nbackend = "elsewhere"\n\n[merchants.DEMO.elsewhere]\n')
    code, out = command(path, "--json")
    error = json.loads(out)
    assert code == 1 and error["error"] == "ConfigError", out
    assert error["issues"] == [
        {"path": "merchants.DEMO.backend", "message": "must be 'salesforce' for this command"}
    ]
