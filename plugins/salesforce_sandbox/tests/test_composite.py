"""Composite graph, plain composite and sObject collections."""

from __future__ import annotations

import copy

from sf_sandbox_helpers import BASE, Api, node, order_graph, post_graph


def test_pos_order_graph_commits_and_activation_creates_the_summary(api: Api) -> None:
    demo = api.sandbox.demo
    result = post_graph(api, order_graph(demo, txn="T-1"))
    graph = result["graphs"][0]
    assert graph["graphId"] == "g1" and graph["isSuccessful"] is True
    entries = graph["graphResponse"]["compositeResponse"]
    first = entries[0]
    assert set(first) == {"body", "httpHeaders", "httpStatusCode", "referenceId"}
    assert first["httpStatusCode"] == 201
    assert first["body"] == {"id": first["body"]["id"], "success": True, "errors": []}
    assert first["httpHeaders"]["Location"] == f"{BASE}/sobjects/Order/{first['body']['id']}"
    activation = node(result, 0, "refActivate")
    assert activation["httpStatusCode"] == 204 and activation["body"] is None
    order_id = first["body"]["id"]
    order = api.record("Order", order_id)
    assert order["Status"] == "Activated" and order["StatusCode"] == "Activated"
    assert order["TotalAmount"] == 90.0  # 2x25 + 45 - 5 discount
    summaries = api.rows(
        "SELECT Id, OrderNumber, OrderLifeCycleType, GrandTotalAmount, "
        f"Account.PersonEmail FROM OrderSummary WHERE OriginalOrderId = '{order_id}'"
    )
    assert len(summaries) == 1
    summary = summaries[0]
    assert summary["OrderLifeCycleType"] == "MANAGED"
    assert summary["OrderNumber"] == order["OrderNumber"]
    assert summary["Account"]["PersonEmail"] == "amanda.freeman@example.com"
    assert summary["GrandTotalAmount"] == 97.6  # 90 + 7.60 tax
    items = api.rows(
        "SELECT StockKeepingUnit, QuantityOrdered, QuantityAvailableToCancel, "
        "QuantityAvailableToReturn, Status FROM OrderItemSummary "
        f"WHERE OrderSummaryId = '{summary['Id']}' ORDER BY LineNumber"
    )
    assert [(i["StockKeepingUnit"], i["QuantityOrdered"]) for i in items] == [
        ("TEE-BLK-M", 2.0),
        ("BELT-LTH-90", 1.0),
    ]
    # IN_STORE-DEFAULT is the take-with sale: the org's flow fulfils it at once.
    assert items[0]["Status"] == "FULFILLED" and items[0]["QuantityAvailableToReturn"] == 2.0
    for child in (
        "OrderDeliveryGroupSummary",
        "OrderPaymentSummary",
        "OrderAdjustmentGroupSummary",
        "OrderItemTaxLineItemSummary",
        "OrderItemAdjustmentLineSummary",
    ):
        rows = api.rows(f"SELECT Id FROM {child} WHERE OrderSummaryId = '{summary['Id']}'")
        assert rows, child
    payment = api.rows(
        "SELECT Method, CapturedAmount, Type FROM OrderPaymentSummary "
        f"WHERE OrderSummaryId = '{summary['Id']}'"
    )[0]
    assert payment == {**payment, "Method": "Visa ****1111", "CapturedAmount": 97.6, "Type": "Sale"}


def test_failed_graph_rolls_back_and_halts_the_other_nodes(api: Api) -> None:
    demo = api.sandbox.demo
    good = order_graph(demo, "ok", txn="T-ok")
    bad = order_graph(demo, "bad", txn="T-bad")
    bad_item = next(n for n in bad["compositeRequest"] if n["referenceId"] == "refItem0")
    del bad_item["body"]["Quantity"]
    before = api.query("SELECT COUNT() FROM Order")["totalSize"]
    result = post_graph(api, good, bad)
    assert [g["isSuccessful"] for g in result["graphs"]] == [True, False]
    failed = node(result, 1, "refItem0")
    assert failed["httpStatusCode"] == 400
    assert failed["body"] == [
        {
            "message": "Required fields are missing: [Quantity]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["Quantity"],
        }
    ]
    for entry in result["graphs"][1]["graphResponse"]["compositeResponse"]:
        if entry["referenceId"] != "refItem0":
            assert entry["httpStatusCode"] == 400
            assert entry["body"][0]["errorCode"] == "PROCESSING_HALTED"
            assert entry["body"][0]["message"].startswith("The transaction was rolled back")
    # Only the good graph's order exists; nothing of the failed graph survived.
    assert api.query("SELECT COUNT() FROM Order")["totalSize"] == before + 1
    assert api.rows("SELECT Id FROM Order WHERE POS_Transaction_Id__c = 'T-bad'") == []
    assert (
        api.rows("SELECT Id FROM CardPaymentMethod WHERE CreatedDate = TODAY AND AccountId = null")
        == []
    )


def test_activation_failure_inside_the_graph_rolls_everything_back(api: Api) -> None:
    graph = order_graph(api.sandbox.demo, txn="T-noitems", lines=())
    graph["compositeRequest"] = [
        n for n in graph["compositeRequest"] if n["referenceId"] not in ("refAdjGroup",)
    ]
    result = post_graph(api, graph)
    assert result["graphs"][0]["isSuccessful"] is False
    failed = node(result, 0, "refActivate")
    assert failed["body"][0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    assert api.rows("SELECT Id FROM Order WHERE POS_Transaction_Id__c = 'T-noitems'") == []


def test_duplicate_transaction_id_is_refused_by_the_external_id(api: Api) -> None:
    demo = api.sandbox.demo
    assert post_graph(api, order_graph(demo, txn="T-dup"))["graphs"][0]["isSuccessful"]
    result = post_graph(api, order_graph(demo, txn="T-dup"))
    assert result["graphs"][0]["isSuccessful"] is False
    assert node(result, 0, "refOrder")["body"][0]["errorCode"] == "DUPLICATE_VALUE"


def test_graph_limits(api: Api) -> None:
    demo = api.sandbox.demo
    one = {
        "graphId": "x",
        "compositeRequest": [
            {
                "method": "POST",
                "url": f"{BASE}/sobjects/Account",
                "referenceId": "a",
                "body": {"Name": "A"},
            }
        ],
    }

    def graphs(n: int) -> list[dict]:
        out = []
        for i in range(n):
            g = copy.deepcopy(one)
            g["graphId"] = f"g{i}"
            out.append(g)
        return out

    too_many = api.post("composite/graph", {"graphs": graphs(76)})
    assert too_many.status_code == 400 and "75" in too_many.json()[0]["message"]
    assert api.post("composite/graph", {"graphs": graphs(75)}).status_code == 200
    big = copy.deepcopy(one)
    big["compositeRequest"] = [
        {
            "method": "POST",
            "url": f"{BASE}/sobjects/Account",
            "referenceId": f"a{i}",
            "body": {"Name": f"A{i}"},
        }
        for i in range(501)
    ]
    assert api.post("composite/graph", {"graphs": [big]}).status_code == 400
    split = [copy.deepcopy(big), copy.deepcopy(big)]
    split[0]["compositeRequest"] = big["compositeRequest"][:250]
    split[1]["compositeRequest"] = big["compositeRequest"][:251]
    split[1]["graphId"] = "y"
    response = api.post("composite/graph", {"graphs": split})
    assert response.status_code == 400 and "500" in response.json()[0]["message"]
    # 16 different (version, method, type) nodes
    kinds = copy.deepcopy(one)
    kinds["compositeRequest"] = [
        {
            "method": "GET",
            "url": f"/services/data/v{40 + i}.0/sobjects/Account/"
            f"{demo['accounts']['DEMO-en_US-US']}",
            "referenceId": f"k{i}",
        }
        for i in range(16)
    ]
    response = api.post("composite/graph", {"graphs": [kinds]})
    assert response.status_code == 400 and "different" in response.json()[0]["message"]
    kinds["compositeRequest"] = kinds["compositeRequest"][:15]
    assert post_graph(api, kinds)["graphs"][0]["isSuccessful"]
    # depth 16: each node references the previous one
    deep = copy.deepcopy(one)
    deep["compositeRequest"] = [
        {
            "method": "POST",
            "url": f"{BASE}/sobjects/Account",
            "referenceId": "d0",
            "body": {"Name": "root"},
        }
    ] + [
        {
            "method": "POST",
            "url": f"{BASE}/sobjects/Account",
            "referenceId": f"d{i}",
            "body": {"Name": f"d{i}", "ParentId": f"@{{d{i - 1}.id}}"},
        }
        for i in range(1, 16)
    ]
    response = api.post("composite/graph", {"graphs": [deep]})
    assert response.status_code == 400 and "deeper" in response.json()[0]["message"]
    deep["compositeRequest"] = deep["compositeRequest"][:15]
    assert post_graph(api, deep)["graphs"][0]["isSuccessful"]
    dup = graphs(2)
    dup[1]["graphId"] = "g0"
    assert api.post("composite/graph", {"graphs": dup}).status_code == 400
    bad_id = graphs(1)
    bad_id[0]["graphId"] = "_x"
    assert api.post("composite/graph", {"graphs": bad_id}).status_code == 400


def test_graph_nodes_must_be_sobject_resources(api: Api) -> None:
    graph = {
        "graphId": "q",
        "compositeRequest": [
            {"method": "GET", "url": f"{BASE}/query?q=SELECT+Id+FROM+Account", "referenceId": "q"}
        ],
    }
    response = api.post("composite/graph", {"graphs": [graph]})
    assert response.status_code == 400


def test_more_than_14_failed_graphs_halt_the_rest(api: Api) -> None:
    graphs = [
        {
            "graphId": f"f{i}",
            "compositeRequest": [
                {
                    "method": "POST",
                    "url": f"{BASE}/sobjects/Account",
                    "referenceId": "a",
                    "body": {"Name": f"ok{i}"} if i >= 15 else {},
                }
            ],
        }
        for i in range(20)
    ]
    result = post_graph(api, *graphs)
    assert [g["isSuccessful"] for g in result["graphs"]] == [False] * 20
    assert (
        result["graphs"][14]["graphResponse"]["compositeResponse"][0]["body"][0]["errorCode"]
        == "REQUIRED_FIELD_MISSING"
    )
    assert (
        result["graphs"][15]["graphResponse"]["compositeResponse"][0]["body"][0]["errorCode"]
        == "PROCESSING_HALTED"
    )
    assert api.rows("SELECT Id FROM Account WHERE Name LIKE 'ok%'") == []


def test_graph_counts_as_one_api_call(api: Api) -> None:
    before = api.sandbox.usage.used
    post_graph(api, order_graph(api.sandbox.demo, txn="T-count"))
    assert api.sandbox.usage.used == before + 1


def test_plain_composite_with_references_and_queries(api: Api) -> None:
    body = {
        "allOrNone": False,
        "compositeRequest": [
            {
                "method": "POST",
                "url": f"{BASE}/sobjects/Account",
                "referenceId": "acct",
                "body": {"Name": "Composite Co"},
            },
            {"method": "GET", "url": f"{BASE}/sobjects/Account/@{{acct.id}}", "referenceId": "get"},
            {
                "method": "GET",
                "url": f"{BASE}/query?q=SELECT+Id,Name+FROM+Account+WHERE+Id+=+'@{{acct.id}}'",
                "referenceId": "q",
            },
            {
                "method": "GET",
                "url": f"{BASE}/query?q=select+count()+from+XYZZY",
                "referenceId": "bad",
            },
            {
                "method": "PATCH",
                "url": f"{BASE}/sobjects/Account/@{{q.records[0].Id}}",
                "referenceId": "upd",
                "body": {"Name": "Composite Co 2"},
            },
        ],
    }
    response = api.post("composite", body)
    assert response.status_code == 200
    results = {r["referenceId"]: r for r in response.json()["compositeResponse"]}
    assert results["acct"]["httpStatusCode"] == 201
    assert results["get"]["body"]["Name"] == "Composite Co"
    assert results["q"]["body"]["records"][0]["Name"] == "Composite Co"
    assert results["bad"]["httpStatusCode"] == 400
    assert results["bad"]["body"][0]["errorCode"] == "INVALID_TYPE"
    assert results["upd"]["httpStatusCode"] == 204
    assert api.record("Account", results["acct"]["body"]["id"])["Name"] == "Composite Co 2"


def test_plain_composite_all_or_none_rolls_back(api: Api) -> None:
    body = {
        "allOrNone": True,
        "compositeRequest": [
            {
                "method": "POST",
                "url": f"{BASE}/sobjects/Account",
                "referenceId": "a",
                "body": {"Name": "Rolled Back Co"},
            },
            {
                "method": "POST",
                "url": f"{BASE}/sobjects/Contact",
                "referenceId": "c",
                "body": {"AccountId": "@{a.id}"},
            },
        ],
    }
    results = api.post("composite", body).json()["compositeResponse"]
    assert results[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert results[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert api.rows("SELECT Id FROM Account WHERE Name = 'Rolled Back Co'") == []
    too_many = {
        "compositeRequest": [
            {"method": "GET", "url": f"{BASE}/limits", "referenceId": f"r{i}"} for i in range(26)
        ]
    }
    assert api.post("composite", too_many).status_code == 400


def test_sobject_collections(api: Api) -> None:
    created = api.post(
        "composite/sobjects",
        {
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Account"}, "Name": "Coll 1"},
                {"attributes": {"type": "Account"}},
            ],
        },
    ).json()
    assert created[0]["success"] is True and created[0]["errors"] == []
    assert created[1] == {
        "id": None,
        "success": False,
        "errors": [
            {
                "statusCode": "REQUIRED_FIELD_MISSING",
                "message": "Required fields are missing: [Name]",
                "fields": ["Name"],
            }
        ],
    }
    rolled = api.post(
        "composite/sobjects",
        {
            "allOrNone": True,
            "records": [
                {"attributes": {"type": "Account"}, "Name": "Coll 2"},
                {"attributes": {"type": "Account"}},
            ],
        },
    ).json()
    assert rolled[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert api.rows("SELECT Id FROM Account WHERE Name = 'Coll 2'") == []
    acct_id = created[0]["id"]
    updated = api.patch(
        "composite/sobjects",
        {"records": [{"attributes": {"type": "Account"}, "id": acct_id, "Name": "Coll 1b"}]},
    ).json()
    assert updated == [{"id": acct_id, "success": True, "errors": []}]
    upserted = api.patch(
        "composite/sobjects/Account/POS_Customer_Id__c",
        {
            "records": [
                {"attributes": {"type": "Account"}, "POS_Customer_Id__c": "C-9", "Name": "Nine"},
                {"attributes": {"type": "Account"}, "POS_Customer_Id__c": "C-9", "Name": "Nine b"},
            ]
        },
    ).json()
    assert [u["created"] for u in upserted] == [True, False]
    retrieved = api.get(
        "composite/sobjects/Account",
        params={"ids": f"{acct_id},001000000000000AAA", "fields": "Name"},
    ).json()
    assert retrieved[0]["Name"] == "Coll 1b" and retrieved[1] is None
    deleted = api.delete("composite/sobjects", params={"ids": acct_id}).json()
    assert deleted == [{"id": acct_id, "success": True, "errors": []}]
    empty = api.delete("composite/sobjects", params={"ids": ""})
    assert empty.status_code == 400
    assert empty.json() == [
        {"message": "At least 1 Id is required.", "errorCode": "REQUIRED_FIELD_MISSING"}
    ]
    too_many = api.post(
        "composite/sobjects",
        {"records": [{"attributes": {"type": "Account"}, "Name": str(i)} for i in range(201)]},
    )
    assert too_many.status_code == 400
