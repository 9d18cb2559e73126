"""`omsbridge demo` plays every step, omnichannel included, on both first-party backends."""

from __future__ import annotations

import json
import subprocess
import sys


def test_demo_plays_every_step_on_both_backends(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "omsbridge", "demo", "--json"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    payload = json.loads(done.stdout)
    steps = payload["steps"]
    by_backend = {b: [s for s in steps if s["backend"] == b] for b in ("pos-spi", "salesforce")}
    for backend, played in by_backend.items():
        names = {s["step"] for s in played}
        assert (
            "BOPIS picked up" in names
            and "BORIS: web order looked up and returned in store" in names
        )
        assert all(s["status"] == "ok" for s in played), (
            backend,
            [s for s in played if s["status"] != "ok"],
        )
    assert all(
        isinstance(s["api_calls"], int) and s["api_calls"] > 0 for s in by_backend["salesforce"]
    )
    assert "\x1b[" not in done.stdout + done.stderr
    assert list(tmp_path.iterdir()) == []
