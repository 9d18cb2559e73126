"""A listener whose clock runs ahead of the org's: the catch-up after a restart is bounded by the
org's time (its ``Date`` header), so a change made while the listener was down is not missed,
and the disagreement is logged."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from omni_helpers import Pos, WebShop, bridge_for, listening

from omsbridge_salesforce.reading import parse_datetime
from omsbridge_salesforce.streaming import CATCH_UP
from omsbridge_salesforce_sandbox import SandboxServer


@pytest.mark.parametrize("ahead_minutes", [10, -10])
def test_catch_up_after_restart_uses_the_org_clock(
    config: Path,
    shop: WebShop,
    pos: Pos,
    server: SandboxServer,
    caplog: pytest.LogCaptureFixture,
    ahead_minutes: int,
) -> None:
    # Our clock ahead of (or behind) the org's by ten minutes: the org's clock moves instead.
    server.sandbox.clock.advance(-60 * ahead_minutes)
    for order in shop.demo["orders"][:2]:  # the demo's orders are not importable any more
        shop.set_status(order["fulfillment_order_id"], "Assigned")
    caplog.set_level(logging.WARNING, logger="omsbridge_salesforce")
    with bridge_for(config, Pos()) as bridge, listening(bridge) as listener:
        checkpoint = listener.checkpoint or ""
    placed = shop.place()["fulfillment_order_id"]  # while the listener is down
    with bridge_for(config, pos) as bridge, listening(bridge):
        pos.wait_for(1)
    assert pos.ids() == [placed]
    # Nothing seen yet: the position is remembered by time, the org's time.
    assert checkpoint.startswith(CATCH_UP + "@")
    bound = parse_datetime(checkpoint.partition("@")[2])
    assert bound is not None
    org_now = server.sandbox.clock.now()  # a second or two after the checkpoint: no matter
    assert abs((org_now - bound).total_seconds() - 300) < 60, (org_now, bound)
    warnings = [
        r.getMessage() for r in caplog.records if "Salesforce's (server Date" in r.getMessage()
    ]
    assert warnings and ("ahead of" if ahead_minutes > 0 else "behind") in warnings[0]
