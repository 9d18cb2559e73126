"""A sale posted through ``omsbridge serve`` while Salesforce answers 503: 202 with the outbox
entry, and exactly one order in Salesforce once the export job (the worker's) has run."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

pytest.importorskip("omsbridge_salesforce_sandbox")
pytest.importorskip("omsbridge_contract")

from omsbridge import wire
from omsbridge.export import ExportJob
from omsbridge_contract import Fault, data
from omsbridge_posspi.serve_chain import CLIENT_ID, ServeChain


def test_sale_during_salesforce_503_is_queued_then_posted_once(tmp_path: Path) -> None:
    chain = ServeChain("salesforce", tmp_path)
    chain.start()
    try:
        chain.reset()
        secret = (tmp_path / "serve-client-secret.txt").read_text()
        http = httpx.Client(base_url=f"{chain.url}/merchants/CONTRACT", timeout=30)
        token = http.post(
            "oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": CLIENT_ID,
                "client_secret": secret,
            },
        ).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        txn = data.transaction("SF503", [data.line(1, "SKU-SF503", 1, "25.00", tax="2.00")])
        before = chain.inner.order_count()
        chain.inner.inject_fault(Fault.SERVER_ERROR)
        try:
            answer = http.post("orders", json=wire.unstructure(txn))
        finally:
            chain.inner.clear_faults()
        assert answer.status_code == 202, answer.text
        entry_id = answer.json()["entry_id"]
        assert answer.json()["cause"]["status"] == 503
        store = chain.app.bridge.store
        entry = store.get(entry_id)
        assert entry is not None and entry.transaction_id == txn.transaction_id
        assert chain.inner.order_count() == before, "a queued sale must not be in Salesforce yet"
        # The worker's export job posts it; a second run has nothing left to do.
        first = ExportJob(chain.app.bridge).run(drain=True)
        second = ExportJob(chain.app.bridge).run(drain=True)
        assert chain.inner.order_count() == before + 1
        done = store.get(entry_id)
        assert done is not None and str(done.state) == "done", done
        assert first is not None and second is not None
        # The POS posting again (its own retry) finds it posted: 200, nothing new.
        replay = http.post("orders", json=wire.unstructure(txn))
        assert replay.status_code == 200 and replay.json()["created"] is False, replay.text
        assert chain.inner.order_count() == before + 1
        http.close()
    finally:
        chain.stop()
