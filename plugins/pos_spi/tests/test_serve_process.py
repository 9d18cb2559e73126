"""The real ``omsbridge serve`` process (gunicorn): a POS posts through it, and SIGTERM while a
request is in flight lets that request finish before the process exits."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from posspi_support import sale
from serve_support import POS_EU_KEY, set_env, write_config

from omsbridge import Secret
from omsbridge.spi import MerchantContext
from omsbridge_posspi import PosSpiBackend, PosSpiConfig, SpiAuth
from omsbridge_posspi.server import ServerHandle, SpiApp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"omsbridge serve exited: {process.stderr.read().decode() if process.stderr else ''}"
            )
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("omsbridge serve did not become ready in 30 s")


def test_real_process_serves_and_shuts_down_gracefully(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, app: SpiApp, server: ServerHandle
) -> None:
    env = {**os.environ, **set_env(monkeypatch)}
    port = _free_port()
    config = write_config(tmp_path, server.url, server.url, port=8)  # --port overrides the file
    process = subprocess.Popen(
        [sys.executable, "-m", "omsbridge", "serve", "--config", str(config), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        pos = PosSpiBackend(
            PosSpiConfig(
                f"{url}/merchants/SHOPNOW", SpiAuth(api_key=Secret(POS_EU_KEY, "test")), timeout=10
            ),
            MerchantContext("SHOPNOW"),
        )
        created = pos.post(sale("T-PROC-1"))
        assert created.created and app.order_count() == 1
        assert pos.get_order("T-PROC-1").order_id == created.order_id
        # The next order post is slow at the SPI (2 s): SIGTERM arrives while it is in flight.
        app.inject_fault("timeout", delay=2.0, method="POST", path_prefix="/orders")
        result: dict[str, object] = {}

        def post_slowly() -> None:
            try:
                result["answer"] = pos.post(sale("T-PROC-2"))
            except Exception as exc:  # reported by the assertion below
                result["error"] = exc

        poster = threading.Thread(target=post_slowly)
        poster.start()
        deadline = time.monotonic() + 5
        while ("POST", "/orders") not in app.requests[1:] and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        poster.join(timeout=15)
        assert "error" not in result, result
        assert getattr(result["answer"], "created", False) is True
        assert process.wait(timeout=15) == 0
        assert app.order_count() == 2
        pos.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = process.stderr.read().decode() if process.stderr else ""
    assert POS_EU_KEY not in log
    assert "/merchants/SHOPNOW/orders -> 201" in log, log[-2000:]
