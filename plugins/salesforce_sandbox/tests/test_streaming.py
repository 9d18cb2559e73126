"""CometD streaming: handshake, subscribe with replay, long polls, FOStatusChangedEvent."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import httpx
from sf_sandbox_helpers import BASE, Api, node, order_graph, post_graph

from omsbridge_salesforce_sandbox import SandboxServer

CHANNEL = "/event/FOStatusChangedEvent"


class Bayeux:
    """A minimal CometD long-polling client, enough to drive the sandbox like a real one."""

    def __init__(
        self, server: SandboxServer, token: str | None = None, version: str = "62.0"
    ) -> None:
        self.server = server
        self.token = token or server.token()["access_token"]
        self.http = httpx.Client(base_url=server.url, timeout=10)
        self.path = f"/cometd/{version}"
        self.client_id: str | None = None
        self._id = 0

    def send(self, *messages: dict[str, Any]) -> list[dict[str, Any]]:
        for message in messages:
            self._id += 1
            message.setdefault("id", str(self._id))
            if self.client_id and "clientId" not in message:
                message["clientId"] = self.client_id
        response = self.http.post(
            self.path, json=list(messages), headers={"Authorization": f"Bearer {self.token}"}
        )
        assert response.status_code == 200, response.text
        return response.json()

    def handshake(self) -> dict[str, Any]:
        reply = self.send(
            {
                "channel": "/meta/handshake",
                "version": "1.0",
                "minimumVersion": "1.0",
                "supportedConnectionTypes": ["long-polling"],
            }
        )[0]
        if reply["successful"]:
            self.client_id = reply["clientId"]
        return reply

    def subscribe(self, replay: int | None = -1, channel: str = CHANNEL) -> dict[str, Any]:
        message: dict[str, Any] = {"channel": "/meta/subscribe", "subscription": channel}
        if replay is not None:
            message["ext"] = {"replay": {channel: replay}}
        return self.send(message)[0]

    def connect(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        replies = self.send({"channel": "/meta/connect", "connectionType": "long-polling"})
        events = [
            r
            for r in replies
            if r.get("channel") == CHANNEL or r.get("channel", "").startswith("/event/")
        ]
        meta = next(r for r in replies if r.get("channel") == "/meta/connect")
        return events, meta

    def close(self) -> None:
        self.http.close()


def _fo(server: SandboxServer, index: int = 0) -> str:
    return server.sandbox.demo["orders"][index]["fulfillment_order_id"]


def _patch_status(api: Api, fo_id: str, status: str) -> None:
    assert api.patch(f"sobjects/FulfillmentOrder/{fo_id}", {"Status": status}).status_code == 204


def test_handshake_subscribe_connect_and_live_events(
    sf_sandbox_demo: SandboxServer, api: Api
) -> None:
    client = Bayeux(sf_sandbox_demo)
    shake = client.handshake()
    assert shake["successful"] is True
    assert shake["ext"] == {"replay": True, "payload.format": True}
    assert shake["supportedConnectionTypes"] == ["long-polling"]
    assert shake["version"] == "1.0" and shake["channel"] == "/meta/handshake"
    sub = client.subscribe(-1)
    assert sub == {
        "channel": "/meta/subscribe",
        "id": sub["id"],
        "clientId": client.client_id,
        "subscription": CHANNEL,
        "successful": True,
    }
    events, meta = client.connect()  # the first connect answers at once
    assert events == [] and meta["successful"] is True
    assert meta["advice"] == {"interval": 0, "timeout": 500, "reconnect": "retry"}
    fo_id = _fo(sf_sandbox_demo)
    _patch_status(api, fo_id, "Pickpack")
    _patch_status(api, fo_id, "Ready For Pickup")
    events, meta = client.connect()
    assert [e["data"]["payload"]["NewStatus"] for e in events] == ["Pickpack", "Ready For Pickup"]
    first = events[0]
    assert first["channel"] == CHANNEL
    payload = first["data"]["payload"]
    assert payload["FulfillmentOrderId"] == fo_id
    assert payload["OldStatus"] == "Allocated" and payload["OldStatusCategory"] == "ACTIVATED"
    assert payload["NewStatusCategory"] == "FULFILLING"
    assert (
        payload["OrderSummaryId"] == sf_sandbox_demo.sandbox.demo["orders"][0]["order_summary_id"]
    )
    assert payload["CreatedDate"].endswith("+0000") and payload["CreatedById"].startswith("005")
    assert first["data"]["event"]["EventUuid"] == payload["EventUuid"]
    assert len(payload["EventUuid"]) == 36
    assert isinstance(first["data"]["schema"], str)
    replay_ids = [e["data"]["event"]["replayId"] for e in events]
    assert replay_ids == sorted(replay_ids) and replay_ids[1] > replay_ids[0]
    unsubscribed = client.send({"channel": "/meta/unsubscribe", "subscription": CHANNEL})[0]
    assert unsubscribed["successful"] is True
    _patch_status(api, fo_id, "Picked Up")
    events, _ = client.connect()
    assert events == []
    bye = client.send({"channel": "/meta/disconnect"})[0]
    assert bye["successful"] is True
    after = client.connect()[1]
    assert after["error"] == "403::Unknown client"
    assert after["advice"]["reconnect"] == "handshake"
    client.close()


def test_replay_explicit_and_invalid(sf_sandbox_demo: SandboxServer) -> None:
    sandbox = sf_sandbox_demo.sandbox
    seeded = [e.replay_id for e in sandbox.events.retained(CHANNEL)]
    assert len(seeded) == 4  # three FOs created (Allocated) + one Fulfilled
    steps = [b - a for a, b in itertools.pairwise(seeded)]
    assert all(step >= 1 for step in steps) and any(step > 1 for step in steps)
    explicit = Bayeux(sf_sandbox_demo)
    explicit.handshake()
    assert explicit.subscribe(seeded[1])["successful"]
    events, _ = explicit.connect()
    assert [e["data"]["event"]["replayId"] for e in events] == seeded[2:]
    invalid = Bayeux(sf_sandbox_demo)
    invalid.handshake()
    reply = invalid.subscribe(seeded[-1] + 10_000)
    assert reply["successful"] is False
    assert reply["error"] == (
        f"400::The replayId {{{seeded[-1] + 10_000}}} you provided was invalid.  Please provide "
        "a valid ID, -2 to replay all events, or -1 to replay only new events."
    )
    unknown_channel = invalid.subscribe(-1, channel="/event/Nope__e")
    assert unknown_channel["error"] == (
        "400::The channel you requested to subscribe to does not exist {/event/Nope__e}"
    )
    for c in (explicit, invalid):
        c.close()


def test_replay_all_delivers_every_retained_event(sf_sandbox_demo: SandboxServer) -> None:
    sandbox = sf_sandbox_demo.sandbox
    retained = [e.replay_id for e in sandbox.events.retained(CHANNEL)]
    client = Bayeux(sf_sandbox_demo)
    client.handshake()
    client.subscribe(-2)
    events, _ = client.connect()
    assert [e["data"]["event"]["replayId"] for e in events] == retained
    client.close()


def test_retention_window_follows_the_clock(sf_sandbox_demo: SandboxServer, api: Api) -> None:
    sandbox = sf_sandbox_demo.sandbox
    sandbox.set_token_lifetime(0)
    token = sf_sandbox_demo.token()["access_token"]
    old = [e.replay_id for e in sandbox.events.retained(CHANNEL)]
    sandbox.clock.advance(73 * 3600)
    assert sandbox.events.retained(CHANNEL) == []
    api.login()
    _patch_status(api, _fo(sf_sandbox_demo, 1), "Pickpack")
    client = Bayeux(sf_sandbox_demo, token)
    client.handshake()
    reply = client.subscribe(old[0])
    assert reply["successful"] is False and "invalid" in reply["error"]
    assert client.subscribe(-2)["successful"]
    events, _ = client.connect()
    assert [e["data"]["payload"]["NewStatus"] for e in events] == ["Pickpack"]
    client.close()


def test_events_come_from_composite_and_actions_but_not_rolled_back_graphs(
    sf_sandbox_demo: SandboxServer, api: Api
) -> None:
    client = Bayeux(sf_sandbox_demo)
    client.handshake()
    client.subscribe(-1)
    client.connect()
    fo_id = _fo(sf_sandbox_demo)
    ok = {
        "graphId": "fo",
        "compositeRequest": [
            {
                "method": "PATCH",
                "url": f"{BASE}/sobjects/FulfillmentOrder/{fo_id}",
                "referenceId": "s",
                "body": {"Status": "Pickpack"},
            }
        ],
    }
    rolled = {
        "graphId": "rb",
        "compositeRequest": [
            {
                "method": "PATCH",
                "url": f"{BASE}/sobjects/FulfillmentOrder/{_fo(sf_sandbox_demo, 1)}",
                "referenceId": "s",
                "body": {"Status": "Pickpack"},
            },
            {"method": "POST", "url": f"{BASE}/sobjects/Account", "referenceId": "bad", "body": {}},
        ],
    }
    result = post_graph(api, ok, rolled)
    assert [g["isSuccessful"] for g in result["graphs"]] == [True, False]
    composite = api.post(
        "composite",
        {
            "compositeRequest": [
                {
                    "method": "PATCH",
                    "url": f"{BASE}/sobjects/FulfillmentOrder/{fo_id}",
                    "referenceId": "c",
                    "body": {"Status": "Pack Complete"},
                }
            ]
        },
    )
    assert composite.status_code == 200
    lines = api.rows(
        f"SELECT Id, Quantity FROM FulfillmentOrderLineItem WHERE FulfillmentOrderId = '{fo_id}'"
    )
    cancel = api.post(
        f"commerce/fulfillment/fulfillment-orders/{fo_id}/actions/cancel-item",
        {
            "fulfillmentOrderLineItemsToCancel": [
                {"fulfillmentOrderLineItemId": r["Id"], "quantity": r["Quantity"]} for r in lines
            ]
        },
    )
    assert cancel.status_code == 201
    events, _ = client.connect()
    statuses = [
        (e["data"]["payload"]["FulfillmentOrderId"], e["data"]["payload"]["NewStatus"])
        for e in events
    ]
    assert statuses == [(fo_id, "Pickpack"), (fo_id, "Pack Complete"), (fo_id, "Cancelled")]
    client.close()


def test_new_fulfillment_orders_and_summaries_publish(
    sf_sandbox_demo: SandboxServer, api: Api
) -> None:
    client = Bayeux(sf_sandbox_demo)
    client.handshake()
    client.subscribe(-1)
    client.subscribe(-1, channel="/event/OrderSummaryCreatedEvent")
    client.connect()
    result = post_graph(api, order_graph(api.sandbox.demo, txn="EV-1", method="Store Pickup"))
    order_id = node(result, 0, "refOrder")["body"]["id"]
    events, _ = client.connect()
    assert [e["channel"] for e in events] == ["/event/OrderSummaryCreatedEvent"]
    assert events[0]["data"]["payload"]["OrderId"] == order_id
    summary_id = events[0]["data"]["payload"]["OrderSummaryId"]
    client.subscribe(-1, channel="/event/OrderSumStatusChangedEvent")
    assert (
        api.patch(f"sobjects/OrderSummary/{summary_id}", {"Status": "Approved"}).status_code == 204
    )
    events, _ = client.connect()
    assert [
        (e["data"]["payload"]["OldStatus"], e["data"]["payload"]["NewStatus"]) for e in events
    ] == [("Created", "Approved")]
    client.close()


def test_long_poll_waits_without_blocking_other_requests(
    sf_sandbox_demo: SandboxServer, api: Api
) -> None:
    sf_sandbox_demo.sandbox.configure(long_poll_timeout=3.0)
    client = Bayeux(sf_sandbox_demo)
    client.handshake()
    client.subscribe(-1)
    client.connect()
    box: dict[str, Any] = {}

    def poll() -> None:
        started = time.monotonic()
        box["events"], box["meta"] = client.connect()
        box["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    assert api.get("limits").status_code == 200  # served while the poll is pending
    _patch_status(api, _fo(sf_sandbox_demo), "Pickpack")
    assert time.monotonic() - started < 1.0
    thread.join(timeout=5)
    assert box["events"][0]["data"]["payload"]["NewStatus"] == "Pickpack"
    assert box["elapsed"] < 2.5  # woken by the event, not by the timeout
    client.close()


def test_restart_forgets_clients_and_expired_token_fails_connect(
    sf_sandbox_demo: SandboxServer,
) -> None:
    sandbox = sf_sandbox_demo.sandbox
    client = Bayeux(sf_sandbox_demo)
    client.handshake()
    client.subscribe(-1)
    client.connect()
    control = httpx.post(f"{sf_sandbox_demo.url}/__sandbox__/restart")
    assert control.status_code == 200
    _, meta = client.connect()
    assert meta == {
        "channel": "/meta/connect",
        "id": meta["id"],
        "clientId": client.client_id,
        "successful": False,
        "error": "403::Unknown client",
        "advice": {"reconnect": "handshake", "interval": 0},
    }
    sub = client.subscribe(-1)
    assert sub["error"] == "403::Unknown client"
    assert client.handshake()["successful"]
    assert client.subscribe(-1)["successful"]
    client.connect()
    sandbox.clock.advance(41)  # past the 40 s reconnect timeout
    assert client.connect()[1]["error"] == "403::Unknown client"
    assert client.handshake()["successful"]
    client.subscribe(-1)
    client.connect()
    sandbox.clock.advance(7201)  # the access token expires
    _, meta = client.connect()
    assert meta["error"] == "401::Authentication invalid"
    assert meta["advice"] == {"reconnect": "none", "interval": 0}
    denied = client.handshake()
    assert denied == {
        "channel": "/meta/handshake",
        "id": denied["id"],
        "ext": {
            "sfdc": {"failureReason": "401::Authentication invalid"},
            "replay": True,
            "payload.format": True,
        },
        "advice": {"reconnect": "none"},
        "error": "403::Handshake denied",
        "successful": False,
    }
    client.close()


def test_cometd_url_and_transport_errors(sf_sandbox_demo: SandboxServer) -> None:
    url = sf_sandbox_demo.url
    no_version = httpx.post(f"{url}/cometd", json=[])
    assert no_version.status_code == 400
    assert no_version.text == "API version in the URI is mandatory. URI format: '/cometd/66.0'"
    assert httpx.post(f"{url}/cometd/36.0", json=[]).status_code == 400
    anonymous = httpx.post(
        f"{url}/cometd/62.0",
        json=[{"channel": "/meta/handshake", "supportedConnectionTypes": ["long-polling"]}],
    ).json()[0]
    assert anonymous["error"] == "403::Handshake denied"
    assert anonymous["ext"]["sfdc"]["failureReason"] == "401::Request requires authentication"
    token = sf_sandbox_demo.token()["access_token"]
    websocket = httpx.post(
        f"{url}/cometd/62.0",
        headers={"Authorization": f"OAuth {token}"},
        json=[{"channel": "/meta/handshake", "supportedConnectionTypes": ["websocket"]}],
    ).json()[0]
    assert websocket["error"] == "400::Invalid connection type"
    big = httpx.post(
        f"{url}/cometd/62.0",
        content=b"[" + b" " * 40_000 + b"]",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert big.status_code == 413
    shake = httpx.post(
        f"{url}/cometd/62.0",
        headers={"Authorization": f"Bearer {token}"},
        json={"channel": "/meta/handshake"},
    )
    assert shake.json()[0]["successful"] is True
    assert "BAYEUX_BROWSER" in shake.cookies
