"""Benchmark: FOStatusChangedEvent from the sandbox to the POS hook (run by ``nox -s bench``).

The sandbox runs in its own process (``python -m omsbridge_salesforce_sandbox.cli``) so the
listeners do not share its interpreter. For 1, 10 and 100 merchants listening at once on the
same org (every merchant sees every event), each with the generic listener (durable SQLite
checkpoints, EventUuid dedupe) and the default handler (fetch the fulfillment order, map it,
call ``omsbridge_fulfillment_order_received``), it prints:

* latency from a status change (just before its PATCH is sent) to the hook call, p50 and p95
  over ``--changes`` changes made one at a time (target: p50 <= 50 ms on loopback);
* throughput during a burst of ``--burst`` changes sent as fast as possible: events read by
  the listeners per second and hook calls per second (several changes of one order read in
  one batch are delivered once, in their latest state).

Figures only: this is not a pass/fail test.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from omsbridge import Bridge, FulfillmentEvent, hookimpl
from omsbridge.bridge import Merchant
from omsbridge.listen import DeliverFulfillmentOrders, Listener, ListenerSettings
from omsbridge.plugins import load_entry_point_plugins, new_plugin_manager

VERSION = "62.0"
BASE = f"/services/data/v{VERSION}"
STATUSES = ("Assigned", "Allocated")


class Recorder:
    """The POS hook: records when each merchant got which order in which status."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, float]] = []
        self.cond = threading.Condition()

    @hookimpl
    def omsbridge_fulfillment_order_received(
        self, merchant_id: str, fulfillment_order: Any
    ) -> None:
        """Note the call."""
        now = time.perf_counter()
        with self.cond:
            self.calls.append(
                (merchant_id, fulfillment_order.fulfillment_order_id, fulfillment_order.status, now)
            )
            self.cond.notify_all()

    def arrivals(self, fo_id: str, status: str, since: float) -> dict[str, float]:
        """First call per merchant for this order in this status after ``since``."""
        first: dict[str, float] = {}
        for merchant, fo, state, when in self.calls:
            if fo == fo_id and state == status and when >= since and merchant not in first:
                first[merchant] = when
        return first


class CountingHandler(DeliverFulfillmentOrders):
    """The default handler, counting the events it is given."""

    def __init__(self) -> None:
        self.events = 0
        self._lock = threading.Lock()

    def __call__(self, merchant: Merchant, events: Sequence[FulfillmentEvent]) -> None:
        """Count, then deliver as usual."""
        with self._lock:
            self.events += len(events)
        super().__call__(merchant, events)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_sandbox() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "omsbridge_salesforce_sandbox.cli", "--port", str(port),
         "--seed", "demo", "--long-poll-timeout", "5", "--api-budget", "100000000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/__sandbox__/info", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the sandbox did not start")


def _shop(url: str) -> tuple[httpx.Client, dict[str, Any]]:
    info = httpx.get(f"{url}/__sandbox__/info").json()
    creds = info["credentials"]
    token = httpx.post(
        f"{url}/services/oauth2/token",
        data={"grant_type": "password",
              **{k: creds[k] for k in ("client_id", "client_secret", "username", "password")}},
    ).json()["access_token"]  # fmt: skip
    http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return http, info["demo"]


def _place_orders(http: httpx.Client, demo: dict[str, Any], count: int) -> list[str]:
    """``count`` online BOPIS orders routed to store-001 (Connect), their FO ids."""
    fos = []
    account = demo["accounts"]["amanda.freeman@example.com"]
    for n in range(count):
        base = f"{BASE}/sobjects"
        nodes = [
            {"method": "POST", "url": f"{base}/Order", "referenceId": "o", "body": {
                "AccountId": account, "EffectiveDate": "2026-11-20", "Status": "Draft",
                "Pricebook2Id": demo["pricebook_id"],
                "SalesChannelId": demo["sales_channels"]["Web Store"]}},
            {"method": "POST", "url": f"{base}/OrderDeliveryGroup", "referenceId": "g", "body": {
                "OrderId": "@{o.id}", "DeliverToName": "Amanda Freeman",
                "OrderDeliveryMethodId": demo["delivery_methods"]["Store Pickup"]}},
            {"method": "POST", "url": f"{base}/OrderItem", "referenceId": "i", "body": {
                "OrderId": "@{o.id}", "OrderDeliveryGroupId": "@{g.id}",
                "PricebookEntryId": demo["pricebook_entries"]["TEE-BLK-M"],
                "Product2Id": demo["products"]["TEE-BLK-M"], "Quantity": 1, "UnitPrice": 25,
                "ListPrice": 25, "TotalLineAmount": 25, "Type": "Order Product"}},
            {"method": "PATCH", "url": f"{base}/Order/@{{o.id}}", "referenceId": "a",
             "body": {"Status": "Activated"}},
        ]  # fmt: skip
        answer = http.post(
            f"{BASE}/composite/graph",
            json={"graphs": [{"graphId": f"g{n}", "compositeRequest": nodes}]},
        )
        graph = answer.json()["graphs"][0]
        assert graph["isSuccessful"], graph
        order = graph["graphResponse"]["compositeResponse"][0]["body"]["id"]
        q = f"SELECT Id FROM OrderSummary WHERE OriginalOrderId = '{order}'"
        summary = http.get(f"{BASE}/query", params={"q": q}).json()["records"][0]["Id"]
        rows = http.get(f"{BASE}/query", params={"q": (
            "SELECT Id, OrderDeliveryGroupSummaryId, QuantityOrdered FROM OrderItemSummary "
            f"WHERE OrderSummaryId = '{summary}'")}).json()["records"]  # fmt: skip
        out = http.post(f"{BASE}/commerce/fulfillment/fulfillment-orders", json={
            "orderSummaryId": summary, "orderDeliveryGroupSummaryId":
            rows[0]["OrderDeliveryGroupSummaryId"], "fulfillmentGroups": [{
                "fulfilledFromLocationId": demo["locations"]["store-001"],
                "fulfillmentType": "Retail Store",
                "orderItemSummaries": [{"orderItemSummaryId": r["Id"],
                                        "quantity": r["QuantityOrdered"]} for r in rows]}]})  # fmt: skip
        fos.append(out.json()["fulfillmentOrderIds"][0])
    return fos


def _config(path: Path, url: str, merchants: int) -> Path:
    parts = [f'[store]\npath = "{path.parent / "state.db"}"\n']
    for n in range(merchants):
        parts.append(
            f'[merchants.M{n:03d}]\nbackend = "salesforce"\n\n[merchants.M{n:03d}.salesforce]\n'
            f'url_base = "{url}"\nallow_insecure_sandbox_url = true\n'
            'client_id = "3MVG9omsbridgeSandboxConsumerKey"\n'
            'client_secret = { env = "BENCH_SF_SECRET" }\nusername = "integration@omsbridge.sandbox"\n'
            'password = { env = "BENCH_SF_PASSWORD" }\n'
            'custom_fields = [{ oms_field_name = "warehouseID__c" }]\n'
        )
    path.write_text("\n".join(parts))
    return path


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _run(url: str, http: httpx.Client, state: dict[str, str], merchants: int, changes: int,
         burst: int) -> dict[str, float]:  # fmt: skip
    fos = list(state)
    with tempfile.TemporaryDirectory() as tmp:
        recorder = Recorder()
        pm = new_plugin_manager()
        load_entry_point_plugins(pm)
        pm.register(recorder, name="bench-pos")
        bridge = Bridge.from_config(
            _config(Path(tmp) / "c.toml", url, merchants), plugin_manager=pm
        )
        handler = CountingHandler()
        settings = ListenerSettings(wait=1.0)
        listeners = [Listener(bridge.for_merchant(m), bridge.store, handler, settings)
                     for m in bridge.merchant_ids]  # fmt: skip
        for listener in listeners:
            listener.poll()  # subscribe from now before measuring
        stop = threading.Event()
        threads = [threading.Thread(target=li.run, args=(stop,), daemon=True) for li in listeners]
        for thread in threads:
            thread.start()

        def change(fo: str) -> tuple[str, float]:
            status = STATUSES[(STATUSES.index(state[fo]) + 1) % 2]
            state[fo] = status
            started = time.perf_counter()
            response = http.patch(f"{BASE}/sobjects/FulfillmentOrder/{fo}", json={"Status": status})
            assert response.status_code == 204, response.text
            return status, started

        latencies: list[float] = []
        for k in range(changes):
            fo = fos[k % len(fos)]
            status, started = change(fo)
            deadline = time.perf_counter() + 30
            with recorder.cond:
                while len(recorder.arrivals(fo, status, started)) < merchants:
                    if not recorder.cond.wait(max(0.0, deadline - time.perf_counter())):
                        break
                got = recorder.arrivals(fo, status, started)
            latencies.extend((when - started) * 1000 for when in got.values())
        before_events, before_calls = handler.events, len(recorder.calls)
        started = time.perf_counter()
        for k in range(burst):
            change(fos[k % len(fos)])
        deadline = time.perf_counter() + 120
        while handler.events - before_events < burst * merchants and time.perf_counter() < deadline:
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        events = handler.events - before_events
        calls = len(recorder.calls) - before_calls
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
        bridge.close()
    return {
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p95": _percentile(latencies, 0.95) if latencies else float("nan"),
        "samples": len(latencies),
        "expected": changes * merchants,
        "events_per_s": events / elapsed,
        "hooks_per_s": calls / elapsed,
        "events": events,
        "burst_s": elapsed,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print a table."""
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merchants", default="1,10,100", help="comma-separated counts")
    parser.add_argument("--changes", type=int, default=30, help="latency samples per count")
    parser.add_argument("--burst", type=int, default=100, help="changes in the throughput burst")
    parser.add_argument("--orders", type=int, default=10, help="fulfillment orders to change")
    args = parser.parse_args(argv)
    process, url = _start_sandbox()
    try:
        http, demo = _shop(url)
        os.environ.setdefault("BENCH_SF_PASSWORD", "sandbox-password")
        os.environ.setdefault("BENCH_SF_SECRET", "sandbox-consumer-secret")
        fos = _place_orders(http, demo, args.orders)
        print(f"sandbox {url} (own process), {len(fos)} fulfillment orders changed in turn")
        print(f"{'merchants':>9} {'p50 ms':>8} {'p95 ms':>8} {'samples':>9} "
              f"{'events/s':>9} {'hooks/s':>8} {'burst':>12}")  # fmt: skip
        state = dict.fromkeys(fos, "Allocated")  # each order's current status, kept across runs
        for count in (int(c) for c in args.merchants.split(",")):
            r = _run(url, http, state, count, args.changes, args.burst)
            print(f"{count:>9} {r['p50']:>8.1f} {r['p95']:>8.1f} "
                  f"{r['samples']:>4}/{r['expected']:<4} {r['events_per_s']:>9.0f} "
                  f"{r['hooks_per_s']:>8.0f} {r['events']:>5} in {r['burst_s']:.1f}s")  # fmt: skip
        http.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
