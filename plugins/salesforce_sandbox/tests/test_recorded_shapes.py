"""Every recorded Salesforce body in recorded/ against the same kind of sandbox answer.

For each file we make the request the recording came from (mapped onto sandbox objects where
the recording used a custom object such as ``Whizbang``) and compare the *shape*: keys, JSON
types and nesting. Record field names that belong to the recorded org's own objects are
mapped to sandbox fields of the same type.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sf_sandbox_helpers import BASE, Api

from omsbridge_salesforce_sandbox import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME

RECORDED = Path(__file__).parent / "recorded"


def shape(value: Any) -> Any:
    """Keys, types and nesting of a JSON value (numbers are one type, as in JSON)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return "string"


def _load(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


def _rename(record: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    return {mapping.get(k, k): v for k, v in record.items()}


def _token_form(**overrides: str) -> dict[str, str]:
    return {
        "grant_type": "password",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "username": USERNAME,
        "password": PASSWORD,
        **overrides,
    }


def _case_auth_success(api: Api) -> tuple[Any, Any]:
    response = api.http.post("/services/oauth2/token", data=_token_form())
    assert response.status_code == 200
    body = response.json()
    recorded = _load("restforce__auth_success_response.json")
    # The sandbox also sends token_type (as every current Salesforce flow does).
    return shape(recorded), shape({k: v for k, v in body.items() if k != "token_type"})


def _case_auth_error(api: Api) -> tuple[Any, Any]:
    response = api.http.post("/services/oauth2/token", data=_token_form(password="bad"))
    assert response.status_code == 400
    return shape(_load("restforce__auth_error_response.json")), shape(response.json())


def _case_refresh_error(api: Api) -> tuple[Any, Any]:
    response = api.http.post(
        "/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": "expired",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    recorded = _load("restforce__refresh_error_response.json")
    assert response.json() == recorded  # identical, not only the same shape
    return shape(recorded), shape(response.json())


def _create(api: Api) -> httpx.Response:
    response = api.post("sobjects/Account", {"Name": "xyzzy", "AccountNumber": "420"})
    assert response.status_code == 201
    return response


def _case_create(api: Api) -> tuple[Any, Any]:
    return shape(_load("cumulusci__sobject_create_201.json")), shape(_create(api).json())


def _case_create_restforce(api: Api) -> tuple[Any, Any]:
    return shape(_load("restforce__create_success_response.json")), shape(_create(api).json())


def _case_write_error(api: Api) -> tuple[Any, Any]:
    response = api.post("sobjects/Account", {"Name": "x", "foo": 1})
    assert response.status_code == 400
    return shape(_load("restforce__write_error_INVALID_FIELD.json")), shape(response.json())


def _case_upsert_not_found(api: Api) -> tuple[Any, Any]:
    response = api.patch("sobjects/Account/Namez/x", {"Name": "x"})
    assert response.status_code == 404
    recorded = _load("restforce__upsert_error_NOT_FOUND.json")
    assert response.json() == recorded
    return shape(recorded), shape(response.json())


def _case_query_empty(api: Api) -> tuple[Any, Any]:
    body = api.query("SELECT Id FROM Account WHERE Name = 'nobody'")
    return shape(_load("restforce__query_empty_response.json")), shape(body)


def _case_query_users(api: Api) -> tuple[Any, Any]:
    body = api.query("SELECT Id, FirstName, LastName FROM User")
    return shape(_load("snowfakery__query_users_200.json")), shape(body)


def _case_query_invalid_type(api: Api) -> tuple[Any, Any]:
    response = api.get("query", params={"q": "SELECT Xyzzy FROM Xyzzy"})
    assert response.status_code == 400
    recorded = _load("snowfakery__query_INVALID_TYPE_400.json")
    assert response.json() == recorded
    return shape(recorded), shape(response.json())


def _case_query_nested(api: Api) -> tuple[Any, Any]:
    # Whizbang -> Account: Checkbox -> IsPersonAccount, Text -> AccountNumber,
    # Date/DateTime -> an Order's EffectiveDate/CreatedDate through the child subquery.
    parent = api.create("Account", {"Name": "Parent Whizbang", "AccountNumber": "Hello"})
    child = api.create("Account", {"Name": "Hi there!", "AccountNumber": "x", "ParentId": parent})
    api.create("Account", {"Name": "Child Whizbang", "ParentId": child})
    records = api.query(
        "SELECT IsPersonAccount, AccountNumber, Parent.Name, Parent.AccountNumber, "
        f"(SELECT Name FROM ChildAccounts) FROM Account WHERE Id = '{child}'"
    )
    recorded = _load("restforce__query_success_response.json")
    rec = recorded["records"][0]
    rec = {
        k: v
        for k, v in rec.items()
        if k not in ("Date_Label", "DateTime_Label", "Picklist_Multiselect_Label")
    }
    recorded["records"][0] = _rename(
        rec,
        {
            "Checkbox_Label": "IsPersonAccount",
            "Text_Label": "AccountNumber",
            "ParentWhizbang__r": "Parent",
            "Whizbangs__r": "ChildAccounts",
        },
    )
    parent_rel = recorded["records"][0]["Parent"]
    recorded["records"][0]["Parent"] = _rename(parent_rel, {"Text_Label": "AccountNumber"})
    dated = api.rows("SELECT EffectiveDate, CreatedDate FROM Order LIMIT 1")[0]
    assert shape(dated["EffectiveDate"]) == shape(
        _load("restforce__query_success_response.json")["records"][0]["Date_Label"]
    )
    assert dated["CreatedDate"].endswith("+0000") and len(dated["CreatedDate"]) == 28
    return shape(recorded), shape(records)


def _paged(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    api.sandbox.configure(query_page_size=1)
    first = api.query("SELECT AccountNumber FROM Account WHERE AccountNumber != null")
    assert first["totalSize"] >= 2
    last = first
    while not last["done"]:
        last = api.get(last["nextRecordsUrl"]).json()
    return first, last


def _case_query_first_page(api: Api) -> tuple[Any, Any]:
    api.create("Account", {"Name": "a", "AccountNumber": "First Page"})
    api.create("Account", {"Name": "b", "AccountNumber": "Last Page"})
    first, _ = _paged(api)
    recorded = _load("restforce__query_paginated_first_page.json")
    recorded["records"] = [_rename(r, {"Text_Label": "AccountNumber"}) for r in recorded["records"]]
    return shape(recorded), shape(first)


def _case_query_last_page(api: Api) -> tuple[Any, Any]:
    api.create("Account", {"Name": "a", "AccountNumber": "First Page"})
    api.create("Account", {"Name": "b", "AccountNumber": "Last Page"})
    _, last = _paged(api)
    recorded = _load("restforce__query_paginated_last_page.json")
    recorded["records"] = [_rename(r, {"Text_Label": "AccountNumber"}) for r in recorded["records"]]
    return shape(recorded), shape(last)


def _composite(api: Api, requests: list[dict[str, Any]]) -> dict[str, Any]:
    response = api.post("composite", {"compositeRequest": requests})
    assert response.status_code == 200
    return response.json()


def _case_composite_not_found(api: Api) -> tuple[Any, Any]:
    body = _composite(
        api, [{"method": "GET", "url": f"{BASE}/sobjects/Foo", "referenceId": "CCI__RefId__0__"}]
    )
    recorded = _load("cumulusci__composite_subrequest_NOT_FOUND_404.json")
    assert body == recorded
    return shape(recorded), shape(body)


def _case_composite_invalid_type(api: Api) -> tuple[Any, Any]:
    body = _composite(
        api,
        [
            {
                "method": "GET",
                "url": f"{BASE}/query?q=select+count()+from+Account",
                "referenceId": "refAccount",
            },
            {
                "method": "GET",
                "url": f"{BASE}/query?q=select+count()+from+XYZZY",
                "referenceId": "refXYZZY",
            },
        ],
    )
    recorded = _load("cumulusci__composite_query_INVALID_TYPE_400.json")
    assert body["compositeResponse"][1] == recorded["compositeResponse"][1]
    return shape(recorded), shape(body)


def _case_composite_two_queries(api: Api) -> tuple[Any, Any]:
    body = _composite(
        api,
        [
            {
                "method": "GET",
                "url": f"{BASE}/query?q=SELECT+Id+FROM+Account+WHERE+Name='none'",
                "referenceId": "one",
            },
            {
                "method": "GET",
                "url": f"{BASE}/query?q=SELECT+Id+FROM+Account+WHERE+Name='none'",
                "referenceId": "two",
            },
        ],
    )
    return shape(_load("cumulusci__composite_two_queries_200.json")), shape(body)


def _case_composite_304(api: Api) -> tuple[Any, Any]:
    acct = api.create("Account", {"Name": "cached"})
    body = _composite(
        api,
        [
            {
                "method": "GET",
                "url": f"{BASE}/sobjects/Account/{acct}",
                "referenceId": f"CCI__RefId__{i}__",
                "httpHeaders": {"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"},
            }
            for i in range(3)
        ],
    )
    recorded = _load("cumulusci__composite_304_with_headers_MANUALLY_EDITED.json")
    # The recording's headers also carry an ETag (manually edited); the sandbox sends
    # Last-Modified only, so compare everything but the header map's keys.
    for entry in recorded["compositeResponse"]:
        entry["httpHeaders"].pop("ETag")
    return shape(recorded), shape(body)


def _case_collections_create(api: Api) -> tuple[Any, Any]:
    response = api.post(
        "composite/sobjects",
        {
            "allOrNone": False,
            "records": [{"Name": "Sitwell-Bluth", "attributes": {"type": "Account"}}],
        },
    )
    return shape(_load("cumulusci__composite_sobjects_create_200.json")), shape(response.json())


def _case_collections_create_restforce(api: Api) -> tuple[Any, Any]:
    response = api.post(
        "composite/sobjects", {"records": [{"Name": "x", "attributes": {"type": "Account"}}]}
    )
    return shape(_load("restforce__composite_sobjects_success_response.json")), shape(
        response.json()
    )


def _case_collections_upsert(api: Api) -> tuple[Any, Any]:
    response = api.patch(
        "composite/sobjects/Account/POS_Customer_Id__c",
        {
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Account"}, "POS_Customer_Id__c": f"c{i}", "Name": f"C {i}"}
                for i in range(16)
            ],
        },
    )
    body = response.json()
    assert len(body) == 16 and all(r["created"] for r in body)
    return shape(_load("cumulusci__composite_sobjects_upsert_by_extid_200.json")), shape(body)


def _case_collections_destroy(api: Api) -> tuple[Any, Any]:
    response = api.delete("composite/sobjects", params={"ids": ""})
    assert response.status_code == 400
    recorded = _load("restforce__composite_sobjects_destroy_REQUIRED_FIELD_MISSING.json")
    assert response.json() == recorded
    return shape(recorded), shape(response.json())


CASES = {
    "restforce__auth_success_response.json": _case_auth_success,
    "restforce__auth_error_response.json": _case_auth_error,
    "restforce__refresh_error_response.json": _case_refresh_error,
    "cumulusci__sobject_create_201.json": _case_create,
    "restforce__create_success_response.json": _case_create_restforce,
    "restforce__write_error_INVALID_FIELD.json": _case_write_error,
    "restforce__upsert_error_NOT_FOUND.json": _case_upsert_not_found,
    "restforce__query_empty_response.json": _case_query_empty,
    "snowfakery__query_users_200.json": _case_query_users,
    "snowfakery__query_INVALID_TYPE_400.json": _case_query_invalid_type,
    "restforce__query_success_response.json": _case_query_nested,
    "restforce__query_paginated_first_page.json": _case_query_first_page,
    "restforce__query_paginated_last_page.json": _case_query_last_page,
    "cumulusci__composite_subrequest_NOT_FOUND_404.json": _case_composite_not_found,
    "cumulusci__composite_query_INVALID_TYPE_400.json": _case_composite_invalid_type,
    "cumulusci__composite_two_queries_200.json": _case_composite_two_queries,
    "cumulusci__composite_304_with_headers_MANUALLY_EDITED.json": _case_composite_304,
    "cumulusci__composite_sobjects_create_200.json": _case_collections_create,
    "restforce__composite_sobjects_success_response.json": _case_collections_create_restforce,
    "cumulusci__composite_sobjects_upsert_by_extid_200.json": _case_collections_upsert,
    "restforce__composite_sobjects_destroy_REQUIRED_FIELD_MISSING.json": _case_collections_destroy,
}


def test_every_recording_has_a_case() -> None:
    assert {p.name for p in RECORDED.glob("*.json")} == set(CASES)
    assert (RECORDED / "README.md").exists()


@pytest.mark.parametrize("name", sorted(CASES))
def test_recorded_shape(demo_app: Api, name: str) -> None:
    expected, actual = CASES[name](demo_app)
    if isinstance(expected, dict) and isinstance(actual, dict):
        # Compare key sets ignoring order (Salesforce's key order is not significant).
        assert sorted(expected) == sorted(actual)
    assert expected == actual
