"""Fault injection and the control endpoints (faults, clock, reset, restart, config)."""

from __future__ import annotations

import time

import httpx
import pytest
from sf_sandbox_helpers import BASE, Api, node, order_graph, post_graph

from omsbridge_salesforce_sandbox import Fault, SalesforceSandbox, SandboxServer


def _control(server: SandboxServer, name: str, json: object = None) -> httpx.Response:
    return httpx.post(f"{server.url}/__sandbox__/{name}", json=json or {})


def test_latency(sf_sandbox: SandboxServer) -> None:
    _control(sf_sandbox, "faults", {"kind": "latency", "latency_ms": 300, "path": "*/limits"})
    with sf_sandbox.client() as http:
        started = time.monotonic()
        assert http.get(f"{BASE}/limits").status_code == 200
        assert time.monotonic() - started >= 0.3
        started = time.monotonic()
        http.get(f"{BASE}/sobjects")
        assert time.monotonic() - started < 0.3  # scoped to /limits


def test_seeded_error_rate_is_reproducible() -> None:
    def statuses(seed: int) -> list[int]:
        sandbox = SalesforceSandbox(error_rate=0.5, error_status=500, rng_seed=seed)
        client = httpx.Client(
            transport=httpx.WSGITransport(app=sandbox), base_url="http://sandbox.local"
        )
        out = [client.get("/services/data").status_code for _ in range(20)]
        sandbox.close()
        return out

    first = statuses(7)
    assert first == statuses(7)
    assert set(first) == {200, 500}
    assert first != statuses(8)


def test_error_body_shapes(sf_sandbox: SandboxServer) -> None:
    _control(
        sf_sandbox,
        "faults",
        {
            "faults": [
                {"kind": "error", "status": 503, "path": "*/limits", "count": 1},
                {"kind": "error", "status": 500, "path": "*/sobjects", "count": 1},
            ]
        },
    )
    with sf_sandbox.client() as http:
        unavailable = http.get(f"{BASE}/limits")
        assert unavailable.status_code == 503
        assert unavailable.json()[0]["errorCode"] == "SERVER_UNAVAILABLE"
        broken = http.get(f"{BASE}/sobjects")
        assert broken.status_code == 500
        assert broken.json()[0]["errorCode"] == "UNKNOWN_EXCEPTION"
        assert http.get(f"{BASE}/limits").status_code == 200


def test_next_two_graph_calls_answer_503(sf_sandbox_demo: SandboxServer, api: Api) -> None:
    _control(
        sf_sandbox_demo,
        "faults",
        {"kind": "error", "status": 503, "path": "*/composite/graph", "method": "POST", "count": 2},
    )
    listed = httpx.get(f"{sf_sandbox_demo.url}/__sandbox__/faults").json()["faults"]
    assert listed[0]["count"] == 2
    graph = order_graph(api.sandbox.demo, txn="F-503")
    assert api.post("composite/graph", {"graphs": [graph]}).status_code == 503
    assert api.get("limits").status_code == 200  # other paths are not affected
    assert api.post("composite/graph", {"graphs": [graph]}).status_code == 503
    assert api.rows("SELECT Id FROM Order WHERE POS_Transaction_Id__c = 'F-503'") == []
    assert post_graph(api, graph)["graphs"][0]["isSuccessful"]
    assert httpx.get(f"{sf_sandbox_demo.url}/__sandbox__/faults").json()["faults"] == []


def test_timeout_before_commit_changes_nothing(sf_sandbox_demo: SandboxServer, api: Api) -> None:
    api.sandbox.add_fault("timeout", path="*/composite/graph", hold_seconds=0.6, count=1)
    graph = order_graph(api.sandbox.demo, txn="T-before")
    with pytest.raises(httpx.ReadTimeout):
        api.post("composite/graph", {"graphs": [graph]}, timeout=0.2)
    time.sleep(0.6)
    assert api.rows("SELECT Id FROM Order WHERE POS_Transaction_Id__c = 'T-before'") == []


def test_timeout_after_commit_keeps_the_change(sf_sandbox_demo: SandboxServer, api: Api) -> None:
    api.sandbox.add_fault(
        "timeout", path="*/composite/graph", hold_seconds=0.6, after_commit=True, count=1
    )
    graph = order_graph(api.sandbox.demo, txn="T-after")
    with pytest.raises(httpx.ReadTimeout):
        api.post("composite/graph", {"graphs": [graph]}, timeout=0.3)
    # The server committed before the client gave up: a blind retry would duplicate the sale,
    # and the external id is what stops it.
    assert len(api.rows("SELECT Id FROM Order WHERE POS_Transaction_Id__c = 'T-after'")) == 1
    retry = post_graph(api, graph)
    assert node(retry, 0, "refOrder")["body"][0]["errorCode"] == "DUPLICATE_VALUE"


def test_unable_to_lock_row(sf_sandbox_demo: SandboxServer, api: Api) -> None:
    _control(sf_sandbox_demo, "faults", {"kind": "lock", "path": "*/sobjects/Account", "count": 1})
    locked = api.post("sobjects/Account", {"Name": "Locked"})
    assert locked.status_code == 400
    body = locked.json()[0]
    assert body["errorCode"] == "UNABLE_TO_LOCK_ROW" and body["fields"] == []
    assert body["message"].startswith("unable to obtain exclusive access to this record")
    assert api.post("sobjects/Account", {"Name": "Unlocked"}).status_code == 201
    api.sandbox.add_fault("lock", path="*/composite/graph", count=1)
    demo = api.sandbox.demo
    result = post_graph(api, order_graph(demo, "a", txn="L-1"), order_graph(demo, "b", txn="L-2"))
    assert [g["isSuccessful"] for g in result["graphs"]] == [False, True]
    assert node(result, 0, "refOrder")["body"][0]["errorCode"] == "UNABLE_TO_LOCK_ROW"


def test_fault_validation_and_clearing(sf_sandbox: SandboxServer) -> None:
    bad = _control(sf_sandbox, "faults", {"kind": "explode"})
    assert bad.status_code == 400 and "unknown fault kind" in bad.json()["error"]
    assert _control(sf_sandbox, "faults", {"kind": "error", "status": 404}).status_code == 400
    assert _control(sf_sandbox, "faults", {"kind": "error", "bogus": 1}).status_code == 400
    _control(sf_sandbox, "faults", {"kind": "error", "status": 503})
    assert httpx.get(f"{sf_sandbox.url}/services/data").status_code == 503
    # control endpoints are never faulted
    assert httpx.get(f"{sf_sandbox.url}/__sandbox__/info").status_code == 200
    assert httpx.delete(f"{sf_sandbox.url}/__sandbox__/faults").json()["faults"] == []
    assert httpx.get(f"{sf_sandbox.url}/services/data").status_code == 200
    with pytest.raises(ValueError):
        Fault("timeout", rate=2.0)


def test_clock_control(sf_sandbox: SandboxServer) -> None:
    now = httpx.get(f"{sf_sandbox.url}/__sandbox__/clock").json()
    moved = _control(sf_sandbox, "clock", {"advance": 3600}).json()
    assert moved["now"] > now["now"]
    frozen = _control(
        sf_sandbox, "clock", {"set": "2030-01-01T00:00:00+00:00", "freeze": True}
    ).json()
    assert frozen == {"now": "2030-01-01T00:00:00+00:00", "frozen": True}
    time.sleep(0.05)
    assert httpx.get(f"{sf_sandbox.url}/__sandbox__/clock").json()["now"] == frozen["now"]
    assert _control(sf_sandbox, "clock", {"unfreeze": True}).json()["frozen"] is False


def test_reset_and_config(sf_sandbox: SandboxServer) -> None:
    with sf_sandbox.client() as http:
        assert (
            http.get(f"{BASE}/query", params={"q": "SELECT COUNT() FROM Location"}).json()[
                "totalSize"
            ]
            == 0
        )
    info = _control(sf_sandbox, "reset", {"seed": "demo"}).json()
    assert info["demo"]["locations"]["store-001"]
    with sf_sandbox.client() as http:  # tokens were wiped by the reset: log in again
        assert (
            http.get(f"{BASE}/query", params={"q": "SELECT COUNT() FROM Location"}).json()[
                "totalSize"
            ]
            == 3
        )
    configured = _control(sf_sandbox, "config", {"query_page_size": 2}).json()
    assert configured["options"]["query_page_size"] == 2
    assert _control(sf_sandbox, "config", {"nope": 1}).status_code == 400
    assert httpx.get(f"{sf_sandbox.url}/__sandbox__/nothing").status_code == 404


def test_restart_keeps_records_and_tokens(sf_sandbox_demo: SandboxServer, api: Api) -> None:
    acct = api.create("Account", {"Name": "Survivor"})
    assert _control(sf_sandbox_demo, "restart").json() == {"restarted": True}
    assert api.record("Account", acct)["Name"] == "Survivor"


def test_state_file_survives_a_new_process(tmp_path: object) -> None:
    from pathlib import Path

    from omsbridge_salesforce_sandbox import serve

    state = Path(str(tmp_path)) / "org.sqlite"
    with serve(seed="demo", state_path=str(state)) as first:
        token = first.token()["access_token"]
        with first.client(token) as http:
            created = http.post(f"{BASE}/sobjects/Account", json={"Name": "Persisted"}).json()
            fo_id = first.sandbox.demo["orders"][0]["fulfillment_order_id"]
            http.patch(f"{BASE}/sobjects/FulfillmentOrder/{fo_id}", json={"Status": "Pickpack"})
        events = [e.replay_id for e in first.sandbox.events.retained()]
    with serve(state_path=str(state)) as second:  # a "new process" on the same file
        assert second.sandbox.demo["orders"][0]["fulfillment_order_id"] == fo_id
        assert [e.replay_id for e in second.sandbox.events.retained()] == events
        with second.client(token) as http:  # the old token still works
            got = http.get(f"{BASE}/sobjects/Account/{created['id']}")
            assert got.status_code == 200 and got.json()["Name"] == "Persisted"
            fresh = http.post(f"{BASE}/sobjects/Account", json={"Name": "After"}).json()
            assert fresh["id"] != created["id"]
            assert (
                http.get(f"{BASE}/sobjects/FulfillmentOrder/{fo_id}").json()["Status"] == "Pickpack"
            )
