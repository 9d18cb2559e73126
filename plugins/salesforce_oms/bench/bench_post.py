"""Benchmark: posting POS sales to the local Salesforce OMS sandbox (run by ``nox -s bench``).

Prints, for 1-, 5- and 20-line sales:

* API calls per sale for a cold merchant (first sale) and a warm one, read from the sandbox's
  ``/limits`` ``DailyApiRequests`` (target: warm = exactly 1, cold <= 5 before the first post);
* CPU time to build the composite graph (target: <= 0.5 ms for 5 lines);
* wall time per post through the backend vs raw httpx sending the same prebuilt graph
  (target: <= 1.2x).

Figures only: this is not a pass/fail test. ``--posts N`` sets the posts per size (default 40).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from omsbridge import (
    CardTender,
    Customer,
    LineItem,
    MerchantContext,
    Secret,
    TaxLine,
    Transaction,
    TransactionKind,
)
from omsbridge_salesforce.backend import SalesforceBackend
from omsbridge_salesforce.client import dumps
from omsbridge_salesforce.config import SalesforceConfig
from omsbridge_salesforce.graph import build_order_graph
from omsbridge_salesforce_sandbox import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME, serve

API = "v62.0"
WHEN = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


def _sale(txn_id: str, lines: int) -> Transaction:
    items = tuple(
        LineItem(
            line_number=n,
            sku=f"SKU-{n:03d}",
            quantity=Decimal(2),
            unit_price=Decimal("9.99"),
            name=f"Product {n}",
            taxes=(TaxLine("Sales Tax", Decimal("1.60"), Decimal("0.08")),),
        )
        for n in range(1, lines + 1)
    )
    total = sum((i.total for i in items), Decimal(0))
    return Transaction(
        transaction_id=txn_id,
        kind=TransactionKind.SALE,
        created_at=WHEN,
        currency="USD",
        store_id="store-001",
        lines=items,
        total=total,
        tenders=(CardTender(total, brand="Visa", last4="4242"),),
        customer=Customer(email="bench@example.com", first_name="Bench", last_name="Mark"),
    )


def _config(url: str) -> SalesforceConfig:
    return SalesforceConfig(
        url_base=url,
        allow_insecure_sandbox_url=True,
        client_id=CLIENT_ID,
        client_secret=Secret(CLIENT_SECRET, "bench"),
        username=USERNAME,
        password=Secret(PASSWORD, "bench"),
        api_version=API,
    )


class _Usage:
    """DailyApiRequests used, read through /limits (whose own cost is measured once)."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        first = self._raw()
        self.cost = self._raw() - first  # what one /limits call itself counts

    def _raw(self) -> int:
        body = self.http.get(f"/services/data/{API}/limits").json()["DailyApiRequests"]
        return int(body["Max"]) - int(body["Remaining"])

    def used(self) -> int:
        return self._raw() - self.cost


def _calls(usage: _Usage, action: Any) -> int:
    before = usage.used()
    action()
    return usage.used() - before - usage.cost


def _bench(size: int, posts: int) -> None:
    """Print one row of figures for sales of ``size`` lines."""
    with serve(seed="empty") as server:
        token = server.token()["access_token"]
        http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})
        usage = _Usage(http)
        backend = SalesforceBackend(_config(server.url), MerchantContext("BENCH", "en_US", "US"))
        backend.client.auth.token()  # the token endpoint is not an API call
        cold_lookups = _calls(usage, lambda: backend.lookups.resolve(_sale("COLD", size)))
        cold_total = cold_lookups + _calls(usage, lambda: backend.post(_sale("COLD", size)))
        warm = _calls(usage, lambda: backend.post(_sale("WARM", size)))

        refs = backend.lookups.resolve(_sale("X", size))
        txn = _sale("BUILD", size)
        runs = 2000 if size <= 5 else 500
        started = time.process_time()
        for _ in range(runs):
            build_order_graph(txn, refs, backend.config)
        build_ms = (time.process_time() - started) / runs * 1000

        # Interleave backend posts and raw posts of prebuilt graphs so both see the same
        # server state (the org grows as orders are added).
        post_times: list[float] = []
        raw_times: list[float] = []
        url = f"/services/data/{API}/composite/graph"
        headers = {"Content-Type": "application/json"}
        for n in range(posts):
            t = _sale(f"P-{size}-{n}", size)
            started = time.perf_counter()
            backend.post(t)
            post_times.append(time.perf_counter() - started)
            body = dumps({"graphs": [backend.build_graph(_sale(f"R-{size}-{n}", size)).payload()]})
            started = time.perf_counter()
            response = http.post(url, content=body, headers=headers)
            raw_times.append(time.perf_counter() - started)
            assert response.status_code == 200 and response.json()["graphs"][0]["isSuccessful"]
        post_ms = statistics.median(post_times) * 1000
        raw_ms = statistics.median(raw_times) * 1000
        print(
            f"{size:>5} {cold_total:>10} {warm:>10} {build_ms:>9.3f} {post_ms:>8.2f} "
            f"{raw_ms:>7.2f} {post_ms / raw_ms:>6.2f}"
        )
        print(f"{'':>5} (cold: {cold_lookups} lookup call(s) before the first post)")
        backend.close()
        http.close()


def main() -> None:
    """Run the benchmark for 1-, 5- and 20-line sales and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=40, help="posts per sale size")
    args = parser.parse_args()
    print("omsbridge-salesforce: posting sales to the local sandbox (loopback)\n")
    header = (
        f"{'lines':>5} {'cold calls':>10} {'warm calls':>10} {'build ms':>9} "
        f"{'post ms':>8} {'raw ms':>7} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for size in (1, 5, 20):
        _bench(size, args.posts)
    print(
        "\ntargets: warm = 1 call; cold <= 5 before the first post; build <= 0.5 ms for 5 "
        "lines; post <= 1.2x raw httpx"
    )


if __name__ == "__main__":
    main()
