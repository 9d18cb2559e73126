"""Many merchants on the pos-spi reference server: one SpiApp per merchant behind one port.

``http://host:port/m/<merchant>/...`` reaches that merchant's app (its own orders and its own
fulfillment-event feed), so a test or benchmark can run hundreds of merchants in one process.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from omsbridge_posspi.server import SpiApp, serve

__all__ = ["MultiSpi", "write_multi_config"]


class MultiSpi:
    """One reference app per merchant id, served together (see the module doc)."""

    def __init__(self, merchant_ids: Iterable[str], *, latency: float = 0.0) -> None:
        self.apps = {m: SpiApp() for m in merchant_ids}
        if latency:
            for app in self.apps.values():
                # Every order post takes this long, as a remote OMS would.
                app.inject_fault("timeout", count=None, delay=latency, method="POST",
                                 path_prefix="/orders")  # fmt: skip
        self._handle = serve(self._dispatch)
        self.url = self._handle.url

    def base_url(self, merchant_id: str) -> str:
        """The merchant's SPI base URL."""
        return f"{self.url}/m/{merchant_id}"

    def _dispatch(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        parts = path.split("/", 3)  # "", "m", merchant, rest
        app = self.apps.get(parts[2]) if len(parts) > 2 and parts[1] == "m" else None
        if app is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"no such merchant\n"]
        environ = {**environ, "PATH_INFO": "/" + (parts[3] if len(parts) > 3 else ""),
                   "SCRIPT_NAME": f"/m/{parts[2]}"}  # fmt: skip
        return app(environ, start_response)

    def orders(self, merchant_id: str) -> list[str]:
        """Transaction ids of the merchant's orders, in the order the server created them."""
        store = self.apps[merchant_id].store
        with store._lock:
            rows = store._db.execute(
                "SELECT transaction_id FROM orders WHERE transaction_id IS NOT NULL ORDER BY rowid"
            ).fetchall()
        return [row[0] for row in rows]

    def events(self, merchant_id: str) -> list[str]:
        """Every event id the merchant's feed holds."""
        store = self.apps[merchant_id].store
        with store._lock:
            rows = store._db.execute("SELECT event_id FROM events ORDER BY seq").fetchall()
        return [row[0] for row in rows]

    def stop(self) -> None:
        """Stop the server and close the apps."""
        self._handle.stop()
        for app in self.apps.values():
            app.store.close()


def write_multi_config(
    path: Path, spi: MultiSpi, store: str, *, timeout: float = 5.0, key_env: str = "TEST_SPI_KEY"
) -> Path:
    """A config with every merchant of ``spi`` (``store``: the ``[store]`` table)."""
    parts = [store]
    for merchant_id in spi.apps:
        parts.append(
            f'[merchants.{merchant_id}]\nbackend = "pos-spi"\n'
            f'[merchants.{merchant_id}.pos-spi]\nbase_url = "{spi.base_url(merchant_id)}"\n'
            f"timeout = {timeout}\n"
            f'auth = {{ type = "api_key", api_key = {{ env = "{key_env}" }} }}\n'
        )
    path.write_text("\n".join(parts))
    return path
